"""The runners' logic with fake competitors (rotation, calibration, per-op results), and what they promise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

import benchmarks
from benchmarks import scenarios, stores, targets
from benchmarks.inprocess.asgi import overhead_ratios
from benchmarks.inprocess.runner import Case, Group, GroupResult, calibrate, run_groups
from benchmarks.inprocess.toolkit import TOOLKIT_ROWS

ROOT = Path(benchmarks.__file__).parent


class FakeCase:
    """A competitor that "takes" a fixed time per op and records when it ran."""

    def __init__(self, name: str, per_op: float, log: list[str]) -> None:
        self.name, self.per_op, self.log = name, per_op, log

    def __call__(self, loops: int) -> float:
        self.log.append(self.name)
        return self.per_op * loops


def _group(log: list[str]) -> Group:
    return Group(
        "g",
        "Fake",
        "a",
        [Case(n, f"{n} detail", FakeCase(n, t, log)) for n, t in (("a", 1e-6), ("b", 2e-6), ("c", 4e-6))],
    )


def test_runner_rotates_order_every_round() -> None:
    """After calibration, each round runs every case once, starting one place further along."""
    log: list[str] = []
    run_groups([_group(log)], rounds=3, batch_seconds=0.001)
    measured = log[-9:]
    assert measured == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_runner_reports_seconds_per_op_and_ratios() -> None:
    """Results are per operation, whatever the batch size, and ratios are to the baseline."""
    (result,) = run_groups([_group([])], rounds=2, batch_seconds=0.001)
    assert result.samples["b"] == pytest.approx([2e-6, 2e-6])
    section = result.section()
    assert section.key == "inprocess.g"
    rows = {row.name: row for row in section.rows}
    assert rows["b"].value.median == pytest.approx(2.0)  # microseconds
    assert rows["c"].ratio is not None
    assert rows["c"].ratio.median == pytest.approx(4.0)
    assert rows["a"].detail == "a detail"


def test_calibration_sizes_batches_to_the_target_time() -> None:
    """A case of 1 us per op gets about batch_seconds / 1 us loops per batch."""
    loops = calibrate(Case("x", "", FakeCase("x", 1e-6, [])), 0.01)
    assert 9_000 <= loops <= 11_000


def test_overhead_share() -> None:
    """The share is (ours - bare) / (theirs - bare) per round; rounds where theirs adds nothing are dropped."""
    result = GroupResult("asgi", "t", "bare", {})
    result.samples = {"bare": [10.0, 10.0, 10.0], "ours": [15.0, 14.0, 12.0], "theirs": [20.0, 18.0, 10.0]}
    assert overhead_ratios(result, "ours", "theirs", "bare") == [0.5, 0.5]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/test", True),
        ("redis://localhost:6379/0", True),
        ("redis://[::1]:6379/0", True),
        ("postgresql+asyncpg://postgres@db.example.com/test", False),
        ("redis://10.0.0.5:6379/0", False),
    ],
)
def test_only_loopback_services(url: str, loopback: bool) -> None:
    """The harness talks only to services on loopback addresses."""
    assert stores.is_loopback(url) is loopback


def test_every_target_names_a_ratio_the_run_produces() -> None:
    """Each target's key is a row the scenarios produce or a derived ratio they compute."""
    source = "".join(
        path.read_text() for package in ("inprocess", "scenarios") for path in (ROOT / package).glob("*.py")
    )
    rows = {
        "inprocess.seal.ours",
        "inprocess.open.ours",
        "inprocess.keyring.16 keys, oldest",
        "server.middleware.ours read",
        "server.middleware.ours write",
        "server.scaleout.2 processes",
        "server.replica.ours+replica",
        *(f"inprocess.toolkit.{row}" for row in TOOLKIT_ROWS),
    }
    for target in [*targets.IN_PROCESS, *targets.SERVER]:
        if target.key.startswith("derived."):
            stem = target.key.split("-vs-")[0].replace("sqlite", "{tag}").replace("postgresql", "{tag}")
            assert stem in source or target.key in source, target.key
        else:
            assert target.key in rows, target.key


def test_replica_scenario_is_registered_and_produces_its_targets() -> None:
    """``--scenario replica`` exists, and its section and rows are the ones its targets name."""
    from benchmarks.scenarios import replica

    assert scenarios.SCENARIOS["replica"] is replica.scenario_replica
    rows = {f"{replica.KEY}.{name}" for name, _ in replica.VARIANTS if name != "ours"}
    replica_targets = {t.key for t in targets.SERVER if "replica" in t.key}
    assert replica_targets == {"server.replica.ours+replica", "derived.replica-primary-statements-per-1000"}
    assert "server.replica.ours+replica" in rows
    zero = next(t for t in targets.SERVER if t.key == "derived.replica-primary-statements-per-1000")
    assert (zero.comparison, zero.threshold) == ("<=", 0)


def test_replica_scenario_skips_without_a_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no primary/replica pair can be built, the scenario is a skipped section saying why."""
    from tests.replica import pgpair

    from benchmarks.scenarios import replica

    monkeypatch.setattr(pgpair, "unavailable_reason", lambda: "no initdb here")
    sections, derived = replica.scenario_replica({}, lambda message: None)
    assert derived == {}
    (section,) = sections
    assert section.key == "server.replica"
    assert section.rows == []
    assert section.notes == ["skipped: no PostgreSQL primary/replica pair: no initdb here"]


def test_auth_app_builds_the_replica_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """``BENCH_AUTH=ours+replica`` gives an app whose auth checks on ``BENCH_READ_DB_URL`` (no connection yet)."""
    from benchmarks.apps import auth

    monkeypatch.setenv("BENCH_AUTH", "ours+replica")
    monkeypatch.setenv("BENCH_SUFFIX", "t")
    monkeypatch.setenv("BENCH_DB_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/primary")
    monkeypatch.setenv("BENCH_READ_DB_URL", "postgresql+asyncpg://postgres@127.0.0.1:2/replica")
    app = auth.create_app()
    (me,) = [route for route in app.routes if isinstance(route, APIRoute) and route.path == "/me"]
    calls, todo = [], list(me.dependant.dependencies)
    while todo:
        dependency = todo.pop()
        calls.append(getattr(dependency.call, "__name__", ""))
        todo += dependency.dependencies
    assert {"get_db", "get_read_db"} <= set(calls)


def test_profile_names_the_case_and_its_functions() -> None:
    """Profiling a case reports its description and the library functions it spent time in."""
    from benchmarks.profiling import profile_case

    text = profile_case("seal/ours", loops=200, top=40)
    assert text.startswith("seal/ours: sealed_sessions: Sealer.seal_json")
    assert "_envelope.py" in text
    assert "_middleware.py" in profile_case("ours read", loops=200, top=40)
    with pytest.raises(SystemExit, match="no in-process case"):
        profile_case("ours", loops=10)  # ambiguous: seal/ours or open/ours


def test_benchmarks_use_only_the_public_api() -> None:
    """No benchmark module imports a private module of sealed_sessions: they measure what users call."""
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                assert parts[0] != "sealed_sessions" or not any(p.startswith("_") for p in parts), (path, name)
