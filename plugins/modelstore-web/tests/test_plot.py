"""The plot's geometry for any finite metric values: the extremes of the float range, subnormal
numbers and values whose differences overflow or underflow all land inside the plot area."""

from __future__ import annotations

import itertools
import math
import sys

import pytest
from modelstore_web.plot import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, chart, nice_ticks

LARGEST = sys.float_info.max
EXTREMES = [1.7e308, 5e-324, -1.7e308, LARGEST, -LARGEST, 0.0, 1e-20, 3e-20, 1e300, math.nextafter(1e300, math.inf), 2e-323, 1.0]


def inside(x: float, y: float) -> bool:
    return LEFT - 1e-6 <= x <= WIDTH - RIGHT + 1e-6 and TOP - 1e-6 <= y <= HEIGHT - BOTTOM + 1e-6


@pytest.mark.parametrize("count", [1, 2, 3])
def test_every_point_and_tick_of_extreme_values_is_inside_the_plot(count):
    for values in itertools.combinations(EXTREMES, count):
        drawn = chart(list(enumerate(values, start=1)))
        assert all(inside(p.x, p.y) for p in drawn.points), values
        assert all(inside(LEFT, t.at) for t in drawn.y_ticks), values
        assert 2 <= len(drawn.y_ticks) <= 12, values
        top, bottom = drawn.y_ticks[-1].at, drawn.y_ticks[0].at  # the axis covers every point
        assert all(top - 1e-6 <= p.y <= bottom + 1e-6 for p in drawn.points), values


def test_the_issue_s_mix_is_drawn_top_to_bottom_in_order():
    drawn = chart([(1, 1.7e308), (2, 5e-324), (3, -1.7e308)])
    ys = [p.y for p in drawn.points]
    assert ys[0] < ys[1] < ys[2]  # larger values higher up (smaller y)
    assert abs(ys[1] - (TOP + (HEIGHT - BOTTOM)) / 2) < 1  # 5e-324 on the middle line of a symmetric axis


def test_round_ticks_keep_their_magnitude():
    assert nice_ticks(0.1, 0.9, cover=True) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1e-20, 3e-20, cover=True) == [1e-20, 1.5e-20, 2e-20, 2.5e-20, 3e-20]
    assert nice_ticks(-1.7e308, 1.7e308, cover=True) == [-LARGEST, -1e308, 0.0, 1e308, LARGEST]
