"""The authenticated request on a PostgreSQL primary and streaming replica, with and without ``read_db``.

The pair is a throwaway one (``tests.replica.pgpair.running_pair``: both servers on free loopback
ports, removed afterwards); the scenario is skipped with a note where it cannot be built. Two
apps share the primary: ``ours`` checks every session there, ``ours+replica`` passes
``read_db`` and checks on the replica (a hit is trusted, a miss is confirmed on the primary).

Besides throughput, it counts the statements that reach the primary per 1,000 authenticated
requests. The count is exact: ``pg_stat_statements`` (loaded by restarting the primary) adds one
call per executed statement as it finishes, in shared memory. ``pg_stat_database.xact_commit``
would need no restart, but a backend publishes those counters at most once a second (or when it
exits), and it counts transactions, not statements. The count runs after the throughput rounds,
so every pool connection is open and its setup queries are not charged to the requests; each app
then serves a fixed number of requests from the load generator, between a reset and a read of the
primary's ``pg_stat_statements`` (its own queries excluded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..harness import LOG_DIR, Competitor, Progress, login, measure, run_async, skipped, uvicorn_app
from ..loadgen import build_request, run_load
from ..report import Section
from ..servers import HOST, Server, running
from ..stores import database
from .auth import AUTH_APP

if TYPE_CHECKING:
    from tests.replica.pgpair import PgPair

__all__ = ["COUNT_REQUESTS", "scenario_replica"]

KEY = "server.replica"
TITLE = "Read replica: authenticated request (PostgreSQL), session check on the primary vs on a streaming replica"
COUNT_REQUESTS = 2000
"""Requests per app in the statement count (each ``GET /me`` with a valid session)."""
COUNT_SQL = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
"""Statements executed on the primary since the reset, the count's own reset and read left out."""
VARIANTS = [
    ("ours", "SessionAuth(User, get_db): the check on the primary"),
    ("ours+replica", "SessionAuth(User, get_db, read_db=...): the check on the replica, a miss on the primary"),
]


def scenario_replica(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Throughput of ``ours`` against ``ours+replica``, and the statements each sends to the primary."""
    try:
        from tests.replica.pgpair import running_pair, unavailable_reason
    except ImportError as exc:  # run from somewhere else than the repository root
        return [skipped(KEY, TITLE, f"tests.replica.pgpair cannot be imported ({exc})")], {}
    why = unavailable_reason()
    if why is not None:
        return [skipped(KEY, TITLE, f"no PostgreSQL primary/replica pair: {why}")], {}
    progress("replica: starting a PostgreSQL primary and a streaming replica")
    with running_pair() as pair:
        counting = _load_pg_stat_statements(pair)
        with database(pair.primary_url) as suffix:
            env = {"BENCH_DB_URL": pair.primary_url, "BENCH_SUFFIX": suffix, "BENCH_READ_DB_URL": pair.replica_url}
            specs = [uvicorn_app(name, AUTH_APP, BENCH_AUTH=name, **env) for name, _ in VARIANTS]
            with running(specs, log_dir=LOG_DIR) as servers:
                competitors = [
                    Competitor(name, (name,), "/me", login(servers[name], "/login?uid=7"), detail)
                    for name, detail in VARIANTS
                ]
                pair.wait_caught_up()  # the replica has every user before the first check
                section, _ = measure(KEY, TITLE, "ours", competitors, servers, profile, progress)
                counts: dict[str, float] = {}
                if counting is None:
                    for c in competitors:
                        progress(f"replica: counting the primary's statements for {COUNT_REQUESTS} requests, {c.name}")
                        counts[c.name], note = _primary_statements(pair, servers[c.name], c, profile["concurrency"])
                        section.notes.append(f"{c.name}: {counts[c.name]:g} statements on the primary {note}")
    section.notes.append(
        f"setup: primary and replica on this machine (started in {pair.start_seconds:.1f} s), sharing its CPUs "
        "with the apps and the load generator: the ratio is the cost of the replica path, not scale-out"
    )
    if counting is not None:
        section.notes.append(f"primary statements not counted: {counting}")
        return [section], {}
    return [section], {
        "derived.replica-primary-statements-per-1000": counts["ours+replica"],
        "derived.replica-primary-statements-per-1000-without-read-db": counts["ours"],
    }


def _load_pg_stat_statements(pair: PgPair) -> str | None:
    """Load ``pg_stat_statements`` on the primary (one restart); ``None`` when done, else why not."""
    from tests.replica.pgpair import PgPairError

    try:
        pair.query(pair.primary, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        pair.stop_primary()
        pair.start_primary()
        pair.query(pair.primary, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pair.wait_streaming()
    except PgPairError as exc:
        pair.ensure_streaming()  # the scenario goes on without the count
        return f"pg_stat_statements could not be loaded ({str(exc).splitlines()[0]})"
    return None


def _primary_statements(pair: PgPair, server: Server, c: Competitor, concurrency: int) -> tuple[float, str]:
    """Statements the primary executed per 1,000 requests of ``c``, and a note saying over how many."""
    pair.query(pair.primary, "SELECT pg_stat_statements_reset()")
    result = run_async(
        run_load(
            [build_request(HOST, server.port, c.path, cookie=c.cookie)],
            concurrency=concurrency,
            duration=600.0,
            max_requests=COUNT_REQUESTS,
        )
    )
    calls = int(pair.query(pair.primary, COUNT_SQL))
    sent = result.requests + result.errors  # no warm-up and no deadline: every request sent is one of these
    per_1000 = round(calls * 1000 / sent, 1) if sent else float("nan")
    return per_1000, f"per 1,000 requests ({calls} over {sent} requests, {result.errors} errors; pg_stat_statements)"
