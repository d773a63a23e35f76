"""Axis scales that read well: ticks at 1, 2 or 5 times a power of ten, and short labels."""

import math

from django.utils.formats import number_format


def nice_step(rough: float) -> float:
    """The 1, 2, 2.5 or 5 × 10ⁿ step closest above `rough`."""
    if rough <= 0:
        return 1
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 2.5, 5, 10):
        if rough <= factor * power:
            return factor * power
    return 10 * power


def nice_ticks(high: float, count: int = 4, *, whole: bool = True) -> list[float]:
    """Ticks from 0 to just above `high`, about `count` of them; whole numbers for counts."""
    if high <= 0:
        return [0, 1]
    step = nice_step(high / count)
    if whole:
        step = max(1, math.ceil(step))
    top = step * math.ceil(high / step)
    ticks = []
    tick = 0.0
    while tick <= top + step / 2:
        ticks.append(int(tick) if whole else round(tick, 10))
        tick += step
    return ticks


def short_number(value: float) -> str:
    """1,234 / 12.5k / 3.4M: what fits beside an axis."""
    size = abs(value)
    for limit, unit, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if size >= limit:
            scaled = value / unit
            text = f"{scaled:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    if value == int(value):
        return number_format(int(value), force_grouping=True)
    return f"{value:.3g}"
