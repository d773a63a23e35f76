"""The ARTIK device dialect under /v1.1/: secure registration, messages, and what a
device may read about itself, on Django REST Framework (docs/artik.md).

A thin adapter over `registrations.services`: the views parse, call one service and
shape the answer; `errors` is the dialect's one table of refusals.
"""
