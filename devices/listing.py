"""The Devices tab at a million rows: sorts walked a page at a time from a cursor, and counts.

Every sort orders by one column and then by id, so rows that tie on the column
still have one place in the order. A page starts after (or before) the row a
cursor names, never at an OFFSET: each page is a range scan of an index whose
columns are the connector, the sort column and the id (see Device.Meta).

A nullable column (last seen) counts NULL ("never") as older than any time.
The walk reads the rows equal to the cursor's value first and then those
beyond it, each as a plain range, so neither needs an OR the planner cannot
turn into an index range.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from devices import counting
from devices.forms import MAX_CURSOR
from devices.models import Device


@dataclass(frozen=True)
class Sort:
    """One way to order the Devices tab: a column (None: the id alone) and its labels."""

    key: str
    column: str | None
    label: str
    nullable: bool = False
    # The direction a click on the column's heading starts with.
    first_direction: str = "asc"


SORTS = {
    sort.key: sort
    for sort in [
        Sort("created", None, "Created"),
        Sort("identity", "identity", "Identity"),
        Sort("status", "status", "Status"),
        Sort("last_seen", "last_seen_at", "Last seen", nullable=True, first_direction="desc"),
    ]
}
DEFAULT_SORT = "created"


class BadCursor(ValueError):
    """A cursor that does not name a position in this sort."""


@dataclass(frozen=True)
class Position:
    """Where a row sits in a sort: its column's value and its id."""

    value: object
    id: int

    def encode(self, sort: Sort) -> str:
        if sort.column is None:
            return str(self.id)
        if self.value is None:
            return f"{self.id}."
        shown = self.value.isoformat() if isinstance(self.value, datetime) else str(self.value)
        return f"{self.id}.{shown}"


def position_of(device: Device, sort: Sort) -> Position:
    return Position(getattr(device, sort.column) if sort.column else None, device.pk)


def decode(text: str, sort: Sort) -> Position:
    """The position a cursor from `Position.encode` names; BadCursor when it names none."""
    head, dot, tail = text.partition(".")
    if not head.isascii() or not head.isdigit() or not 0 < int(head) <= MAX_CURSOR:
        raise BadCursor("the page link is damaged; start again from the first page")
    row_id = int(head)
    if sort.column is None:
        if dot:
            raise BadCursor("the page link belongs to another sort; start from the first page")
        return Position(None, row_id)
    if not dot:
        raise BadCursor("the page link belongs to another sort; start from the first page")
    if sort.key == "last_seen":
        if not tail:
            return Position(None, row_id)
        moment = _moment(tail)
        if moment is None:
            raise BadCursor("the page link is damaged; start again from the first page")
        return Position(moment, row_id)
    if sort.key == "status" and tail not in dict(Device.STATUSES):
        raise BadCursor("the page link is damaged; start again from the first page")
    if not tail or len(tail) > 400:
        raise BadCursor("the page link is damaged; start again from the first page")
    return Position(tail, row_id)


def _moment(text: str):
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


# --- walking a sort -------------------------------------------------------------


def _segments(devices: QuerySet, sort: Sort, start: Position | None, forward: bool) -> list:
    """The querysets that, read one after another, list the rows past `start`.

    `forward` is the sort's ascending order (NULL first, then by value, then id);
    backward is its exact reverse.
    """
    column = sort.column
    if column is None:
        if start is not None:
            devices = (
                devices.filter(id__gt=start.id) if forward else devices.filter(id__lt=start.id)
            )
        return [devices.order_by("id" if forward else "-id")]
    by_id = "id" if forward else "-id"
    by_value = [column, "id"] if forward else [f"-{column}", "-id"]
    null = {f"{column}__isnull": True}
    not_null = {f"{column}__isnull": False}
    if start is None:
        if not sort.nullable:
            return [devices.order_by(*by_value)]
        if forward:
            return [
                devices.filter(**null).order_by(by_id),
                devices.filter(**not_null).order_by(*by_value),
            ]
        return [
            devices.filter(**not_null).order_by(*by_value),
            devices.filter(**null).order_by(by_id),
        ]
    beyond_id = {"id__gt": start.id} if forward else {"id__lt": start.id}
    if start.value is None:
        ties = devices.filter(**null, **beyond_id).order_by(by_id)
        return [ties, devices.filter(**not_null).order_by(*by_value)] if forward else [ties]
    ties = devices.filter(**{column: start.value}, **beyond_id).order_by(by_id)
    lookup = "gt" if forward else "lt"
    beyond = devices.filter(**{f"{column}__{lookup}": start.value}).order_by(*by_value)
    if sort.nullable and not forward:
        return [ties, beyond, devices.filter(**null).order_by(by_id)]
    return [ties, beyond]


def walk(devices: QuerySet, sort: Sort, start: Position | None, forward: bool, limit: int) -> list:
    """Up to `limit` rows past `start` (from the very start when None), in walking order."""
    rows: list = []
    for segment in _segments(devices, sort, start, forward):
        rows.extend(segment[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


@dataclass
class Page:
    rows: list
    has_previous: bool
    has_next: bool
    previous_cursor: str = ""
    next_cursor: str = ""


def page(
    devices: QuerySet,
    sort: Sort,
    descending: bool,
    size: int,
    *,
    after: Position | None = None,
    before: Position | None = None,
    last: bool = False,
) -> Page:
    """One page in the shown order: the first, the one after or before a row, or the last.

    Shown descending, "next" walks the sort backward. Whether a page has a
    neighbour is one row read past each end.
    """
    ahead = not descending  # the walking direction of "next"
    if before is not None or last:
        rows = walk(devices, sort, before, not ahead, size + 1)
        has_previous = len(rows) > size
        rows = rows[:size][::-1]
        has_next = bool(rows) and bool(walk(devices, sort, position_of(rows[-1], sort), ahead, 1))
    else:
        rows = walk(devices, sort, after, ahead, size + 1)
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = (
            after is not None
            and bool(rows)
            and bool(walk(devices, sort, position_of(rows[0], sort), not ahead, 1))
        )
    return Page(
        rows,
        has_previous,
        has_next,
        previous_cursor=position_of(rows[0], sort).encode(sort) if has_previous else "",
        next_cursor=position_of(rows[-1], sort).encode(sort) if has_next else "",
    )


# --- counts -----------------------------------------------------------------------


def status_counts(devices: QuerySet, narrowed: bool = False) -> dict[str, counting.Count]:
    """Rows of `devices` in each status: exact up to counting.EXACT_UP_TO, estimated beyond.

    `narrowed`: a filter the (connector, status) index cannot serve (a tag, an identity
    prefix) picks the rows, so every status is counted in one pass over them.
    """
    statuses = [status for status, _ in Device.STATUSES]
    if narrowed:
        return counting.count_each(devices, "status", statuses)
    return {status: counting.count(devices.filter(status=status)) for status in statuses}


def total(counts: dict[str, counting.Count]) -> counting.Count:
    result = counting.Count(0, True)
    for value in counts.values():
        result = result + value
    return result
