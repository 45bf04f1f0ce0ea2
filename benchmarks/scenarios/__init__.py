"""The real-server scenarios, each a function ``(profile, progress) -> (sections, derived ratios)``.

``generator`` checks the load generator (its ceiling, and a cross-check with wrk); ``middleware``
compares session middlewares and cookie sizes; ``node`` measures the JavaScript reference;
``auth`` compares authenticated requests, and their scale-out; ``replica`` checks sessions on a
streaming PostgreSQL replica and counts what still reaches the primary; ``latency`` puts PostgreSQL
and Redis behind a proxy that adds a fixed delay each way, and compares closed-loop throughput and
open-loop p50 and p99 latency. Each scenario starts its servers
once and measures with :func:`benchmarks.harness.measure`. Servers are always stopped, database
tables always dropped and Redis keys always deleted, even when a scenario fails; a scenario that
cannot run (no Redis, no PostgreSQL, no Node, no PostgreSQL server programs for a replica pair)
is skipped with a note in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..harness import Progress, skipped
from ..report import Section
from .auth import scenario_auth, scenario_scaleout
from .generator import scenario_ceiling, scenario_wrk
from .latency import scenario_latency
from .middleware import scenario_middleware, scenario_sizes
from .node import scenario_node
from .replica import scenario_replica

__all__ = ["SCENARIOS", "run"]

Scenario = Callable[[dict[str, Any], Progress], tuple[list[Section], dict[str, float]]]

SCENARIOS: dict[str, Scenario] = {
    "ceiling": scenario_ceiling,
    "middleware": scenario_middleware,
    "node": scenario_node,
    "auth": scenario_auth,
    "scaleout": scenario_scaleout,
    "replica": scenario_replica,
    "sizes": scenario_sizes,
    "wrk": scenario_wrk,
    "latency": scenario_latency,
}
"""Every scenario by the name ``--scenario`` takes, in the order a full run takes them."""


def run(
    profile: dict[str, Any], *, scenarios: Sequence[str] | None, progress: Progress
) -> tuple[list[Section], dict[str, float]]:
    """Run the chosen scenarios (all by default); a failing scenario becomes a note, not a crash."""
    sections: list[Section] = []
    derived: dict[str, float] = {}
    for name in scenarios or list(SCENARIOS):
        started = time.monotonic()
        try:
            s, d = SCENARIOS[name](profile, progress)
        except Exception as exc:  # report and go on: the other scenarios' numbers are still worth having
            s, d = [skipped(f"server.{name}", f"Scenario {name}", f"failed: {type(exc).__name__}: {exc}")], {}
        progress(f"{name}: done in {time.monotonic() - started:.0f} s")
        sections += s
        derived |= d
    return sections, derived
