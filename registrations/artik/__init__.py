"""The ARTIK dialect under /v1.1/: secure registration, messages, and what a device
may read about itself (docs/artik.md), and the calls companion apps make for a user
with an OAuth 2.0 token (`user_views`, docs/apps-and-hubs.md), on Django REST Framework.

A thin adapter over `registrations.services`: the views parse, call one service and
shape the answer; `errors` is the dialect's one table of refusals.
"""
