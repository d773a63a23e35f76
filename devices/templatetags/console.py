"""Template filters of the console: grouped numbers and times relative to now."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import number_format

register = template.Library()

UNITS = [
    (86400 * 365, "year"),
    (86400 * 30, "month"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
]


@register.filter
def grouped(value) -> str:
    """52018 → 52,018."""
    try:
        return number_format(int(value), force_grouping=True)
    except (TypeError, ValueError):
        return value


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """ "just now", "1 minute ago", "3 hours ago", "in 2 days"."""
    if moment is None:
        return "never"
    seconds = int(((now or timezone.now()) - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    for size, unit in UNITS:
        if seconds >= size:
            amount = seconds // size
            text = f"{amount} {unit}{'' if amount == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


register.filter("ago", ago)


@register.simple_tag
def tag_query(filters: dict | None, tag: dict) -> str:
    """The Devices tab's query string filtered by `tag` (keeping the other filters)."""
    from devices.list_views import query_of

    return query_of({**(filters or {}), "tag": (tag["name"], tag["value"])})
