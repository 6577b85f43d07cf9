"""A metric across versions, as the geometry of an inline SVG chart (drawn by ``templates/_plot.html``).

Rendered on the server: the page needs no script, so the Content-Security-Policy can forbid them
all, and every label goes through the template's escaping like any other value.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from modelstore_core.display import value_text

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 16, 40


@dataclass(frozen=True)
class Point:
    version: int
    value: float
    x: float
    y: float


@dataclass(frozen=True)
class Tick:
    label: str
    at: float  # pixels along its axis


@dataclass(frozen=True)
class Chart:
    points: list[Point]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def nice_ticks(low: float, high: float, count: int = 5, *, cover: bool = False) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) inside ``low``..``high``,
    or, with ``cover``, from the last one at or below ``low`` to the first one at or above ``high``.

    Any finite ``low`` and ``high`` will do: a span wider than the largest float is measured in
    parts of ``count``, a tick past the largest float is that float, and a span too narrow for a
    round step (subnormal numbers) gets its two ends as ticks.
    """
    if not high > low:
        return [low]
    raw = (high - low) / count
    if math.isinf(raw):  # high - low overflows (-1.7e308 .. 1.7e308); each part of it does not
        raw = high / count - low / count
    if raw < sys.float_info.min:  # 10 ** floor(log10(raw)) would underflow to 0
        return [low, high]
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if math.isinf(step):  # no round step this side of the largest float
        return [low, high]
    slack = step * 1e-9
    first = math.floor((low + slack) / step) if cover else math.ceil((low - slack) / step)
    last = math.ceil((high - slack) / step) if cover else math.floor((high + slack) / step)
    # 12 significant digits drop the float noise of i * step (0.30000000000000004) at any magnitude
    ticks = sorted({min(max(float(f"{i * step:.12g}"), -sys.float_info.max), sys.float_info.max) for i in range(first, last + 1)})
    if cover:  # rounding at the float's limits must not leave an end uncovered
        ticks = [low] * (ticks[0] > low) + ticks + [high] * (ticks[-1] < high)
    return ticks


def fraction(value: float, low: float, high: float) -> float:
    """Where ``value`` lies from ``low`` (0) to ``high`` (1), for any finite floats (``high > low``)."""
    span = high - low
    if math.isinf(span):  # halves of values this large lose nothing a pixel shows
        return (value / 2 - low / 2) / (high / 2 - low / 2)
    return (value - low) / span


def label(value: float) -> str:
    return value_text(value)


def chart(series: list[tuple[int, float]]) -> Chart | None:
    """The chart of ``(version, value)`` pairs (oldest first), or ``None`` when there is nothing to draw."""
    if not series:
        return None
    versions = [v for v, _ in series]
    values = [y for _, y in series]
    x_low, x_high = min(versions), max(versions)
    y_low, y_high = min(values), max(values)
    if y_high == y_low:  # a flat line sits in the middle
        pad = abs(y_low) * 0.1 or 1.0
        y_low, y_high = max(y_low - pad, -sys.float_info.max), min(y_high + pad, sys.float_info.max)
    y_ticks = nice_ticks(y_low, y_high, cover=True)
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(version: float) -> float:
        return LEFT + (plot_w / 2 if x_high == x_low else (version - x_low) / (x_high - x_low) * plot_w)

    def y_of(value: float) -> float:
        return TOP + (1 - fraction(value, y_low, y_high)) * plot_h

    x_ticks = sorted({int(t) for t in nice_ticks(x_low, x_high, 8) if float(t).is_integer()} | {x_low, x_high})
    return Chart(
        points=[Point(v, y, x_of(v), y_of(y)) for v, y in series],
        x_ticks=[Tick(str(t), x_of(t)) for t in x_ticks],
        y_ticks=[Tick(label(t), y_of(t)) for t in y_ticks],
    )
