"""What the tests share: clients that talk as devices and API callers do, real TLS,
real processes, certificates and registrations. Modules that define fixtures are
loaded as plugins by tests/conftest.py (pytest_plugins)."""
