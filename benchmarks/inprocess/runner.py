"""How an in-process group is measured: calibrated batches, rotated order, per-round samples.

Every group runs its competitors side by side: each round times one batch of every competitor,
in a rotated order (see :func:`benchmarks.stats.rotated_orders`), and ratios are taken per round.
Batches are sized once so each lasts about ``batch_seconds``; the garbage collector is paused
inside a batch (as ``timeit`` does) and run between batches.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..report import Section, section_from_samples
from ..stats import rotated_orders

__all__ = ["Case", "Group", "GroupResult", "calibrate", "run_groups", "timed", "timed_async"]


@dataclass
class Case:
    """One competitor: ``run(loops)`` performs ``loops`` operations and returns elapsed seconds."""

    name: str
    detail: str
    """What the row does, in words, so the report can say it."""
    run: Callable[[int], float]


@dataclass
class Group:
    """Competitors measured against each other; ratios are against ``baseline``."""

    name: str
    title: str
    baseline: str
    cases: list[Case]


@dataclass
class GroupResult:
    name: str
    title: str
    baseline: str
    details: dict[str, str]
    samples: dict[str, list[float]] = field(default_factory=dict)
    """Seconds per operation, one value per round, per case."""

    def section(self) -> Section:
        """The report section ``inprocess.<name>``, in microseconds per operation."""
        return section_from_samples(
            f"inprocess.{self.name}", self.title, "us/op", self.baseline, self.samples, self.details, scale=1e6
        )


def timed(fn: Callable[[], object]) -> Callable[[int], float]:
    """A :attr:`Case.run` calling ``fn`` ``loops`` times."""

    def run(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return time.perf_counter() - start

    return run


def timed_async(loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[None]]) -> Callable[[int], float]:
    """A :attr:`Case.run` awaiting ``fn()`` ``loops`` times, in one task on ``loop``."""

    async def batch(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            await fn()
        return time.perf_counter() - start

    def run(loops: int) -> float:
        return loop.run_until_complete(batch(loops))

    return run


def calibrate(case: Case, batch_seconds: float) -> int:
    """How many operations of ``case`` take about ``batch_seconds``."""
    loops = 1
    while True:
        elapsed = case.run(loops)
        if elapsed >= batch_seconds / 4 or loops >= 1 << 24:
            return max(1, int(loops * batch_seconds / max(elapsed, 1e-9)))
        loops *= 4


def run_groups(
    groups: list[Group],
    *,
    rounds: int,
    batch_seconds: float,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[GroupResult]:
    """Run every group's cases for ``rounds`` rounds in rotated order; seconds per op per round."""
    results: list[GroupResult] = []
    for group in groups:
        by_name = {c.name: c for c in group.cases}
        loops = {c.name: calibrate(c, batch_seconds) for c in group.cases}
        result = GroupResult(group.name, group.title, group.baseline, {c.name: c.detail for c in group.cases})
        result.samples = {c.name: [] for c in group.cases}
        for r, order in enumerate(rotated_orders([c.name for c in group.cases], rounds)):
            progress(f"in-process {group.name}: round {r + 1}/{rounds}")
            for name in order:
                gc.collect()
                gc.disable()
                try:
                    elapsed = by_name[name].run(loops[name])
                finally:
                    gc.enable()
                result.samples[name].append(elapsed / loops[name])
        results.append(result)
    return results
