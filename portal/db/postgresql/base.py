"""Django's PostgreSQL backend, with statements Gatehouse prepares kept prepared
and a health check that costs no round trip.

Django opens psycopg connections with `prepare_threshold=None`, which turns
preparation off altogether: `execute(..., prepare=True)` is then silently a
one-off statement, parsed and planned by the server each time. Here automatic
preparation stays off (Django inlines values into its SQL, so its statements
would rarely repeat), and only statements executed with `prepare=True` are
prepared, once per connection. Token activation is one: its plan costs the
server about as much as running it.

With CONN_HEALTH_CHECKS Django checks a reused connection at the start of each
request with `SELECT 1`: one round trip on every request that touches the
database, the device API's included. A server that ends a session (restart,
idle timeout, pg_terminate_backend, a pooler closing it) sends an error and
closes the socket, which leaves the socket readable while no query is in
flight. So: a connection whose socket has nothing to read is usable as it is;
one that does (that, or a notification) gets Django's own check.
"""

import select
import sys

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if connection.prepare_threshold is None:
            # Never reached by counting; prepare=True prepares at once.
            connection.prepare_threshold = sys.maxsize
        return connection

    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable or super().is_usable()
