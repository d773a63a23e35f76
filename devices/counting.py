"""Counts that stay fast on a million rows: exact up to a cap, the planner's estimate beyond.

Counting every row of a large filtered set reads every row. Below `EXACT_UP_TO`
rows a count costs a bounded index scan and is exact; above it the number
shown is PostgreSQL's own estimate for the same query (EXPLAIN), never less
than what was counted, and pages say "about" in front of it.

`count_each` counts a set by the values of one column. Where no index holds both
the filter and the column (a tag, an identity prefix), each count of its own would
read the same table rows again; one bounded pass reads them once instead.
"""

import json
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet
from django.utils.formats import number_format

from core.sql import columns

EXACT_UP_TO = 10_000


@dataclass(frozen=True)
class Count:
    """A number of rows, and whether it was counted or estimated."""

    value: int
    exact: bool

    def __str__(self) -> str:
        shown = number_format(self.value, force_grouping=True)
        return shown if self.exact else f"about {shown}"

    def __add__(self, other: "Count") -> "Count":
        return Count(self.value + other.value, self.exact and other.exact)

    def as_json(self) -> dict:
        return {"value": self.value, "exact": self.exact, "text": str(self)}


def count(queryset: QuerySet, cap: int = EXACT_UP_TO) -> Count:
    """Rows of `queryset`: exact when at most `cap`, otherwise estimated."""
    counted = queryset.order_by()[: cap + 1].count()
    if counted <= cap:
        return Count(counted, True)
    return Count(max(estimate(queryset), counted), False)


def count_each(
    queryset: QuerySet, field: str, values: list[str], cap: int = EXACT_UP_TO
) -> dict[str, Count]:
    """Rows of `queryset` with each of `values` in `field`, read in one pass.

    The pass reads at most len(values) × cap + 1 rows: fewer than that and it read
    them all, so every count is exact (some may exceed `cap`). Otherwise each value
    is counted on its own by `count`, exact up to `cap` and estimated beyond.
    """
    limit = len(values) * cap + 1
    sample = queryset.order_by().values(field)[:limit]
    sql, params = sample.query.sql_with_params()
    connection = connections[queryset.db]
    column = connection.ops.quote_name(columns(queryset.model, field)[0])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, COUNT(*) FROM ({sql}) AS sample GROUP BY {column}",  # noqa: S608
            params,
        )
        counted = dict(cursor.fetchall())
    if sum(counted.values()) < limit:
        return {value: Count(counted.get(value, 0), True) for value in values}
    return {value: count(queryset.filter(**{field: value}), cap) for value in values}


def estimate(queryset: QuerySet) -> int:
    """The planner's row estimate for `queryset` (an exact count off PostgreSQL)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.count()
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
