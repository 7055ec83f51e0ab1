"""The block-character charts of the reports (cli/charts.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inventory_cli.cli import charts


def test_a_sparkline_scales_to_its_largest_value_and_leaves_nothing_blank():
    assert charts.sparkline([0, 1, 4, 8, None, 2]) == " ▁▄█ ▂"


@given(st.lists(st.one_of(st.none(), st.integers(0, 10**9)), max_size=400), st.integers(1, 120))
def test_buckets_fit_the_width_and_keep_every_unit(values, width):
    buckets, per = charts.bucket(values, width)
    assert len(buckets) <= width
    assert sum(v or 0 for v in buckets) == sum(v or 0 for v in values)
    assert len(charts.sparkline(buckets)) == len(buckets)
    assert (per == 1) == (len(values) <= width)


def test_a_bar_fills_eighths_marks_the_target_and_says_when_it_runs_over():
    assert charts.bar(7, 28, 8, target=14) == "██  ┊"
    assert charts.bar(3.5, 28, 8) == "█"
    assert charts.bar(1, 28, 8) == "▎"
    assert charts.bar(20, 28, 8, target=14) == "█████▊"  # 45.7 eighths
    assert charts.bar(40, 28, 8) == "████████▸"
    assert charts.bar(None, 28, 8) == ""
    assert charts.bar(0, 28, 8, target=14) == "    ┊"
