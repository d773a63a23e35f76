"""Server-drawn charts of a device's data points: geometry for an inline SVG line chart.

The portal draws charts itself so pages need no charting library, and a chart
is plain markup that tests can read.
"""

import math
from dataclasses import dataclass, field

from django.utils import timezone

WIDTH = 640
HEIGHT = 200
LEFT = 56
RIGHT = 12
TOP = 12
BOTTOM = 28


@dataclass
class Chart:
    """Everything the template needs to draw one alias's values as a line."""

    alias: str
    points: str
    area: str
    dots: list[tuple[float, float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str, str]] = field(default_factory=list)
    latest: str = ""
    count: int = 0
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    bottom_edge: int = HEIGHT - BOTTOM


def as_number(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _nice_label(value: float) -> str:
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def line_chart(alias: str, points: list[tuple]) -> Chart | None:
    """A chart of (created_at, value) pairs in time order, or None if any value is not a number."""
    numbers = [(at, as_number(value)) for at, value in points]
    if not numbers or any(number is None for _, number in numbers):
        return None
    values = [number for _, number in numbers]
    low, high = min(values), max(values)
    if low == high:
        # A flat line sits in the middle of a band around its value.
        spread = abs(low) * 0.1 or 1.0
        low, high = low - spread, high + spread
    first, last = numbers[0][0].timestamp(), numbers[-1][0].timestamp()
    span = last - first
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM

    def x_of(index: int, at) -> float:
        if span > 0:
            return LEFT + (at.timestamp() - first) / span * plot_width
        if len(numbers) == 1:
            return LEFT + plot_width / 2
        return LEFT + index / (len(numbers) - 1) * plot_width

    def y_of(number: float) -> float:
        return TOP + (high - number) / (high - low) * plot_height

    coords = [
        (round(x_of(i, at), 1), round(y_of(number), 1)) for i, (at, number) in enumerate(numbers)
    ]
    polyline = " ".join(f"{x},{y}" for x, y in coords)
    base = HEIGHT - BOTTOM
    area = f"{coords[0][0]},{base} {polyline} {coords[-1][0]},{base}"
    ticks = [low + (high - low) * step / 4 for step in range(5)]
    local_first = timezone.localtime(numbers[0][0])
    local_last = timezone.localtime(numbers[-1][0])
    same_day = local_first.date() == local_last.date()
    time_format = "%H:%M:%S" if same_day else "%b %d %H:%M"
    x_labels = [(LEFT, local_first.strftime(time_format), "start")]
    if len(numbers) > 1:
        x_labels.append((WIDTH - RIGHT, local_last.strftime(time_format), "end"))
    dots = []
    if len(coords) <= 60:
        dots = [
            (x, y, f"{_nice_label(number)} at {timezone.localtime(at):%Y-%m-%d %H:%M:%S}")
            for (x, y), (at, number) in zip(coords, numbers, strict=True)
        ]
    return Chart(
        alias=alias,
        points=polyline,
        area=area,
        dots=dots,
        y_ticks=[(round(y_of(tick), 1), _nice_label(tick)) for tick in ticks],
        x_labels=x_labels,
        latest=points[-1][1],
        count=len(points),
    )
