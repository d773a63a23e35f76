"""Counts that stay fast on a million rows: exact up to a cap, the planner's estimate beyond.

Counting every row of a large filtered set reads every row. Below `EXACT_UP_TO`
rows a count costs a bounded index scan and is exact; above it the number
shown is PostgreSQL's own estimate for the same query (EXPLAIN), never less
than what was counted, and pages say "about" in front of it.
"""

import json
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet
from django.utils.formats import number_format

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
