"""The benchmark harness's statistics: rotation of run order, percentiles, summaries, ratios, targets."""

from __future__ import annotations

import pytest

from benchmarks.stats import (
    Summary,
    Target,
    TargetResult,
    evaluate,
    paired_ratios,
    percentile,
    rotated_orders,
    summarize,
)


def test_rotation_puts_every_competitor_in_every_position() -> None:
    """Over n rounds each of n competitors runs once first, once second, and so on."""
    orders = rotated_orders(["a", "b", "c"], 3)
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    for position in range(3):
        assert sorted(order[position] for order in orders) == ["a", "b", "c"]


def test_rotation_runs_each_competitor_once_per_round() -> None:
    """Every round runs every competitor exactly once, however many rounds there are."""
    names = ["none", "starlette", "ours", "redis"]
    for order in rotated_orders(names, 7):
        assert sorted(order) == sorted(names)


def test_rotation_wraps_after_n_rounds() -> None:
    """Round n repeats round 0: the cycle restarts rather than drifting."""
    orders = rotated_orders(["x", "y"], 5)
    assert orders[0] == orders[2] == orders[4] == ["x", "y"]
    assert orders[1] == orders[3] == ["y", "x"]


def test_rotation_edge_cases() -> None:
    """No competitors gives empty rounds; negative rounds are refused."""
    assert rotated_orders([], 2) == [[], []]
    assert rotated_orders(["a"], 0) == []
    with pytest.raises(ValueError):
        rotated_orders(["a"], -1)


def test_percentile_nearest_rank() -> None:
    """p50 and p99 use the nearest-rank rule: always an observed value, never interpolated."""
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_percentile_refuses_bad_input() -> None:
    """An empty series or a percentile outside 0..100 is an error, not a made-up number."""
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_median_odd_and_even() -> None:
    """The median of an odd series is its middle value; of an even one, the mean of the middle two."""
    assert summarize([5.0, 1.0, 3.0]) == Summary(3.0, 1.0, 5.0, 3)
    assert summarize([4.0, 1.0, 3.0, 2.0]) == Summary(2.5, 1.0, 4.0, 4)
    assert summarize([7.0]).as_dict() == {"median": 7.0, "min": 7.0, "max": 7.0, "n": 1}
    with pytest.raises(ValueError):
        summarize([])


def test_summary_median_resists_one_outlier() -> None:
    """One round disturbed by another process moves the max, not the median."""
    s = summarize([10.0, 10.2, 9.9, 10.1, 55.0])
    assert s.median == 10.1
    assert s.high == 55.0


def test_paired_ratios_are_per_round() -> None:
    """Ratios pair each round's value with the same round's baseline, skipping a zero baseline."""
    assert paired_ratios([2.0, 6.0, 1.0], [1.0, 3.0, 0.0]) == [2.0, 2.0]
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


def test_paired_ratios_cancel_a_slow_round() -> None:
    """A round where the machine was twice as slow for everyone still gives the true ratio."""
    ours = [100.0, 200.0, 100.0]
    base = [125.0, 250.0, 125.0]
    assert summarize(paired_ratios(ours, base)) == Summary(0.8, 0.8, 0.8, 3)


def test_target_at_most() -> None:
    """A "<=" target is met at or below its threshold and reports the margin relative to it."""
    target = Target("k", "seal ratio", "<=", 1.3)
    met = TargetResult(target, 1.17)
    assert met.status == "met"
    assert met.margin == pytest.approx(0.1)
    assert TargetResult(target, 1.3).status == "met"
    missed = TargetResult(target, 1.56)
    assert missed.status == "missed"
    assert missed.margin == pytest.approx(-0.2)
    assert "MISSED, 20.0% outside" in missed.describe()


def test_target_at_least() -> None:
    """A ">=" target is met at or above its threshold; below it, the report says by how much."""
    target = Target("k", "read vs bare", ">=", 0.8)
    assert TargetResult(target, 0.9).status == "met"
    low = TargetResult(target, 0.6)
    assert low.status == "missed"
    assert low.margin == pytest.approx(-0.25)
    assert "MET, 12.5% inside" in TargetResult(target, 0.9).describe()


def test_target_of_zero() -> None:
    """A target of 0 (a count that must vanish) is judged, with its margin in absolute units."""
    target = Target("k", "primary statements per 1,000", "<=", 0)
    zero = TargetResult(target, 0.0)
    assert zero.status == "met"
    assert zero.margin == 0.0
    assert "MET, 0 inside" in zero.describe()
    some = TargetResult(target, 2.5)
    assert some.status == "missed"
    assert some.margin == pytest.approx(-2.5)
    assert "MISSED, 2.5 outside" in some.describe()


def test_evaluate_marks_missing_ratios_not_run() -> None:
    """A target whose scenario did not run is reported as such, never as met."""
    targets = [Target("a", "A", ">=", 1.0), Target("b", "B", "<=", 1.0)]
    results = evaluate(targets, {"a": 1.5})
    assert [r.status for r in results] == ["met", "not run"]
    assert results[1].margin is None
    assert "not run" in results[1].describe()
