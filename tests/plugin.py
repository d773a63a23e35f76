"""Prepares the laptop setup's keys and folders before pytest-django imports the settings.

Loaded with `-p tests.plugin` (pyproject addopts), ahead of every conftest: the
settings refuse to import without their keys, and the suite runs on the same
var/ that `make run` prepares (python -m portal.setup_local).
"""

from portal import setup_local

setup_local.prepare()
