"""Gatehouse's own settings with one extra URL, the bare view bench/ compares against.

Copied name by name rather than star-imported, so a reader sees that nothing
else changes: same middleware, database, cache and device API.
"""

import os

from portal import settings as _gatehouse

globals().update({name: value for name, value in vars(_gatehouse).items() if name.isupper()})

ROOT_URLCONF = "bench.bare_urls"

# bench/device_api.py --conn-health-checks off: what the per-request SELECT 1 costs.
if os.environ.get("BENCH_CONN_HEALTH_CHECKS") == "off":
    DATABASES = {
        **_gatehouse.DATABASES,
        "default": {**_gatehouse.DATABASES["default"], "CONN_HEALTH_CHECKS": False},
    }
