"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS Django checks a reused connection at the start of each
request with `SELECT 1`: one round trip on every request that touches the
database, the device API's included. A server that ends a session (restart,
idle timeout, pg_terminate_backend, a pooler closing it) sends an error and
closes the socket, which leaves the socket readable while no query is in
flight. So: a connection whose socket has nothing to read is usable as it is;
one that does (that, or a notification) gets Django's own check.

(Which statements are prepared is an OPTIONS setting: see DATABASES in
portal/settings.py.)
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable or super().is_usable()
