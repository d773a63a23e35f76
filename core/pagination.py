"""Cursor pagination for the management API: fast at any depth, safe with any cursor."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

MAX_PAGE_SIZE = 1000


class StrictPageSizeMixin:
    """`?page_size=` is a whole number from 1 to MAX_PAGE_SIZE, or the request is a 400:
    a caller who asked for something else learns so instead of getting another size."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class IdCursorPagination(StrictPageSizeMixin, CursorPagination):
    """Pages ordered by primary key, newest first; `?page_size=` from 1 to 1000.

    The cursor is a position in an indexed column, so page 20,000 of a million
    devices costs what page 1 does, unlike OFFSET.
    """

    ordering = "-id"

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        # DRF trusts the position inside the cursor; a forged non-numeric one
        # would reach the database as `id < 'x'` and fail there.
        if cursor is not None and cursor.position is not None:
            if not cursor.position.isdigit() or len(cursor.position) > 19:
                raise NotFound(self.invalid_cursor_message)
        return cursor


class NamePagination(StrictPageSizeMixin, CursorPagination):
    """Pages of rows ordered by name, for short lists people read (connectors)."""

    ordering = ("name", "pk")


class AliasPagination(StrictPageSizeMixin, CursorPagination):
    """Pages of a connector's resources in alias order."""

    ordering = "alias"
