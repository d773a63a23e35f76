"""Cursor pagination for the management API: fast at any depth, safe with any cursor."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Pages ordered by primary key, newest first; `?page_size=` up to 1000.

    The cursor is a position in an indexed column, so page 20,000 of a million
    devices costs what page 1 does, unlike OFFSET.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        # DRF trusts the position inside the cursor; a forged non-numeric one
        # would reach the database as `id < 'x'` and fail there.
        if cursor is not None and cursor.position is not None:
            if not cursor.position.isdigit() or len(cursor.position) > 19:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class NamePagination(CursorPagination):
    """Pages of rows ordered by name, for short lists people read (connectors)."""

    ordering = ("name", "pk")
    page_size_query_param = "page_size"
    max_page_size = 1000


class AliasPagination(CursorPagination):
    """Pages of a connector's resources in alias order."""

    ordering = "alias"
    page_size_query_param = "page_size"
    max_page_size = 1000
