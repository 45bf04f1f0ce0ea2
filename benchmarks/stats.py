"""Statistics for noisy machines: medians, ranges, paired ratios, rotated run orders, targets.

Nothing here measures anything; it is pure and deterministic, so it is tested in the normal suite.

Ratios are computed *per round* (competitor and baseline measured in the same round, moments
apart) and then summarised, so a slow patch of the machine moves both sides of a ratio together
instead of landing on one of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Summary",
    "Target",
    "TargetResult",
    "evaluate",
    "paired_ratios",
    "percentile",
    "rotated_orders",
    "summarize",
]


def rotated_orders(names: Sequence[str], rounds: int) -> list[list[str]]:
    """The order in which to run ``names`` in each of ``rounds`` rounds.

    Round ``r`` starts with ``names[r % n]`` and keeps the cyclic order, so over any ``n``
    consecutive rounds each competitor runs once in every position, and each runs right after
    a different neighbour: warm-up, cache and thermal effects are spread over all of them.
    """
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    n = len(names)
    if n == 0:
        return [[] for _ in range(rounds)]
    return [[names[(r + i) % n] for i in range(n)] for r in range(rounds)]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by the nearest-rank method; no interpolation.

    Nearest rank always returns an observed value: p99 of 100 samples is the 99th smallest.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and range of one series of measurements."""

    median: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def summarize(values: Sequence[float]) -> Summary:
    """Median, minimum and maximum of ``values`` (at least one)."""
    if not values:
        raise ValueError("summary of no values")
    return Summary(_median(values), min(values), max(values), len(values))


def paired_ratios(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-round ratios ``values[i] / baseline[i]``; rounds where the baseline is 0 are skipped."""
    if len(values) != len(baseline):
        raise ValueError(f"paired series differ in length: {len(values)} vs {len(baseline)}")
    return [v / b for v, b in zip(values, baseline, strict=True) if b != 0]


Comparison = Literal["<=", ">="]


@dataclass(frozen=True, slots=True)
class Target:
    """A claim about a ratio, e.g. "ours / raw nacl seal <= 1.3"."""

    key: str
    """Identifier of the ratio in the results (``"inprocess.seal.ours/nacl+b64"``)."""
    description: str
    comparison: Comparison
    threshold: float


@dataclass(frozen=True, slots=True)
class TargetResult:
    target: Target
    measured: float | None
    """The median ratio, or ``None`` when the scenario did not run."""

    @property
    def status(self) -> Literal["met", "missed", "not run"]:
        if self.measured is None:
            return "not run"
        if self.target.comparison == "<=":
            return "met" if self.measured <= self.target.threshold else "missed"
        return "met" if self.measured >= self.target.threshold else "missed"

    @property
    def margin(self) -> float | None:
        """How far inside (positive) or outside (negative) the threshold: relative to it, absolute if it is 0."""
        if self.measured is None:
            return None
        scale = abs(self.target.threshold) or 1.0
        if self.target.comparison == "<=":
            return (self.target.threshold - self.measured) / scale
        return (self.measured - self.target.threshold) / scale

    def describe(self) -> str:
        t = self.target
        if self.measured is None:
            return f"{t.description}: target {t.comparison} {t.threshold:g}: not run"
        margin = self.margin
        assert margin is not None
        how = "inside" if margin >= 0 else "outside"
        far = f"{abs(margin):.3g}" if t.threshold == 0 else f"{abs(margin) * 100:.1f}%"
        return (
            f"{t.description}: {self.measured:.3f} (target {t.comparison} {t.threshold:g}) "
            f"{self.status.upper()}, {far} {how}"
        )


def evaluate(targets: Sequence[Target], ratios: Mapping[str, float]) -> list[TargetResult]:
    """Judge each target against the median ratio stored under its key (absent: not run)."""
    return [TargetResult(t, ratios.get(t.key)) for t in targets]
