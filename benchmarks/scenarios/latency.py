"""The authenticated request with production-like round trips: PostgreSQL and Redis behind a delaying proxy.

On loopback a query's round trip costs about 0.1 ms, so counting round trips hardly shows; in
production the database is on another machine. For each delay in ``profile["latency"]["delays"]``
(0.25 ms each way in the quick profile; 0.25 and 1 ms in the full one), one proxy process
(:mod:`benchmarks.proxy`) holds every chunk that long each way between the apps and both stores,
the same proxy for every competitor: ``ours``, ``table``, ``redis`` and ``by-id-plain`` of
:mod:`benchmarks.apps.auth`, on PostgreSQL. Tables are made and dropped, and Redis keys deleted, on
the real servers directly; only the apps go through the proxy.

Per delay:

1. A self-check that calibrates: the median round trip of ``SELECT 1`` and of a Redis ``PING``,
   direct and through the proxy. The proxy's own hop and timer add to what it holds each chunk, so
   the hold is shortened (twice) until a ``SELECT 1`` gains 2 x delay (:func:`_calibrate`); the
   notes say what it held and what each store's ping gained.
2. Closed loop (:func:`benchmarks.harness.measure`): throughput, section ``server.latency-<d>``.
3. Open loop (:func:`benchmarks.openloop.run_open_loop`): every competitor at the same offered
   rate, half the slowest competitor's closed-loop median, with the same seeded Poisson arrivals in
   a round; p50 and p99 from the scheduled times, section ``server.latency-<d>-open``.
4. Store writes per request, counted by the proxy over sequential requests (one write is one
   round trip for these protocols), in the notes and as ``derived.latency-round-trips-<name>``.

Ratios are per round, competitors in rotated order, as everywhere. ``profile["latency"]`` may cap
the rounds and seconds per run (``max_rounds``, ``max_duration``), so the full profile fits.

Derived, per delay (``0.25ms`` and ``1ms`` in the keys), each the median of per-round ratios:

- ``derived.latency-0.25ms-p50-vs-table``, ``derived.latency-1ms-p50-vs-table``: ours's open-loop
  p50 over table's (lower is better); ``...-p50-vs-redis`` the same against redis;
- ``derived.latency-0.25ms-p99-vs-table``, ``derived.latency-1ms-p99-vs-table``, and against redis:
  the same for p99;
- ``derived.latency-0.25ms-throughput-vs-table``, ``derived.latency-1ms-throughput-vs-table``, and
  against redis: closed-loop throughput, ours over the other's (higher is better);
- ``derived.latency-round-trips-ours`` (and ``-table``, ``-redis``, ``-by-id-plain``): store writes
  per request, both stores together (a count, not a ratio).
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..harness import LOG_DIR, Competitor, Progress, login, measure, pair, run_async, skipped, uvicorn_app
from ..loadgen import build_request, run_load
from ..openloop import run_open_loop
from ..proxy_process import ProxyProcess, running_proxy
from ..report import Row, Section
from ..servers import HOST, Server, running
from ..stats import paired_ratios, percentile, rotated_orders, summarize
from ..stores import database, postgres_problem, postgres_url, redis_prefix, redis_problem, redis_url
from .auth import AUTH_APP, AUTH_VARIANTS

__all__ = ["DEFAULT_DELAYS", "scenario_latency"]

DEFAULT_DELAYS = (0.00025,)
"""Seconds added each way when the profile names none."""
NAMES = ("ours", "table", "redis", "by-id-plain")
BASELINE = "by-id-plain"
RATE_SHARE = 0.5
"""The open-loop rate, as a share of the slowest competitor's closed-loop throughput."""
OPEN_CONNECTIONS = 64
PINGS = 200
"""Round trips per store in each measurement of the self-check."""
CALIBRATION_STEPS = 2
"""Times the self-check measures the proxy's gain and corrects its delay."""
COUNT_REQUESTS = 100
"""Sequential requests per competitor when counting store writes."""


def _settings(profile: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    """The delays to run, and the profile with its rounds and seconds capped by ``profile["latency"]``."""
    latency: dict[str, Any] = profile.get("latency", {})
    capped = dict(profile)
    capped["rounds"] = min(profile["rounds"], latency.get("max_rounds", profile["rounds"]))
    capped["duration"] = min(profile["duration"], latency.get("max_duration", profile["duration"]))
    return list(latency.get("delays", DEFAULT_DELAYS)), capped


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or HOST, parts.port or default_port


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's, user and password kept."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{HOST}:{port}" if user else f"{HOST}:{port}"))


async def _median_round_trips(pg: str, redis_url: str) -> tuple[float, float]:
    """Median seconds of ``SELECT 1`` on PostgreSQL and of ``PING`` on Redis, over :data:`PINGS` each."""
    import asyncpg  # type: ignore[import-untyped]
    import redis.asyncio
    from sqlalchemy.engine import make_url

    async def timed(call: Any) -> float:
        await call()  # the connection is open and the statement prepared before timing
        times = []
        for _ in range(PINGS):
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    conn = await asyncpg.connect(make_url(pg).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        pg_median = await timed(lambda: conn.fetchval("SELECT 1"))
    finally:
        await conn.close()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        redis_median = await timed(client.ping)
    finally:
        await client.aclose()
    return pg_median, redis_median


def _calibrate(pg: str, r_url: str, proxy: ProxyProcess) -> str:
    """Set the proxy's delay so that a ``SELECT 1`` round trip gains 2 x the nominal delay; a note saying how it went.

    Holding chunks for the nominal delay adds more than that: the proxy's own hop and its timer's
    lateness come on top. So the gain is measured, the delay shortened by the excess per way, and
    that again (:data:`CALIBRATION_STEPS` times), then the gain measured once more for the note.
    Both stores go through the same proxy with the same delay; Redis's gain is in the note too.
    """
    nominal = proxy.delay
    via = (_through(pg, proxy.ports["pg"]), _through(r_url, proxy.ports["redis"]))
    direct = run_async(_median_round_trips(pg, r_url))
    gains: list[float] = []
    for _ in range(CALIBRATION_STEPS):
        gains.append(run_async(_median_round_trips(*via))[0] - direct[0])
        proxy.set_delay(max(0.0, proxy.delay - (gains[-1] / 2 - nominal)))
    final = [p - d for p, d in zip(run_async(_median_round_trips(*via)), direct, strict=True)]
    return (
        f"proxy self-check, medians of {PINGS} round trips: holding chunks {nominal * 1000:g} ms each way added "
        f"{gains[0] * 1000:.2f} ms to a SELECT 1 (its own hop and timer add to the hold), so it holds "
        f"{proxy.delay * 1000:.3f} ms: SELECT 1 {direct[0] * 1000:.2f} ms direct, +{final[0] * 1000:.2f} ms through "
        f"it; Redis PING {direct[1] * 1000:.2f} ms direct, +{final[1] * 1000:.2f} ms (target +{nominal * 2000:g} ms)"
    )


def _store_writes(
    proxy: ProxyProcess, servers: dict[str, Server], competitors: list[Competitor]
) -> dict[str, dict[str, float]]:
    """Per competitor, the writes to each store (by route name) that the proxy saw per request."""
    writes = {}
    for c in competitors:
        before = proxy.counters()
        result = run_async(
            run_load(
                [build_request(HOST, servers[c.name].port, c.path, cookie=c.cookie)],
                concurrency=1,
                duration=600.0,
                max_requests=COUNT_REQUESTS,
            )
        )
        after = proxy.counters()
        sent = max(1, result.requests + result.errors)
        writes[c.name] = {route: (after[route].chunks_up - before[route].chunks_up) / sent for route in after}
    return writes


def _open_loop(
    key: str,
    title: str,
    competitors: list[Competitor],
    servers: dict[str, Server],
    rate: float,
    profile: dict[str, Any],
    progress: Progress,
) -> tuple[Section, dict[str, list[float]], dict[str, list[float]]]:
    """Every competitor at ``rate`` in rotated order; the section (p50 in us) and per-round p50 and p99 in ms."""
    p50: dict[str, list[float]] = {c.name: [] for c in competitors}
    p99: dict[str, list[float]] = {c.name: [] for c in competitors}
    errors = dict.fromkeys(p50, 0)
    late: list[tuple[float, float]] = [(0.0, 0.0)]
    dropped = 0
    rounds = profile["rounds"]
    for r, order in enumerate(rotated_orders(list(p50), rounds)):
        for i, name in enumerate(order):
            progress(f"{title}: round {r + 1}/{rounds}, {i + 1}/{len(order)} {name}")
            c = next(c for c in competitors if c.name == name)
            result = run_async(
                run_open_loop(
                    [build_request(HOST, servers[name].port, c.path, cookie=c.cookie)],
                    rate=rate,
                    duration=profile["duration"],
                    warmup=profile["warmup"],
                    connections=OPEN_CONNECTIONS,
                    seed=r,  # the same arrivals for every competitor in a round
                )
            )
            median, tail = result.p(50), result.p(99)
            if median is None or tail is None:
                raise RuntimeError(f"{name}: no successful request in the open loop ({result.errors} errors)")
            p50[name].append(median)
            p99[name].append(tail)
            errors[name] += result.errors
            dropped += result.dropped
            if result.lateness:
                late.append((percentile(result.lateness, 50), percentile(result.lateness, 99)))
    rows = [
        Row(
            c.name,
            c.detail,
            summarize([v * 1000 for v in p50[c.name]]),
            None if c.name == BASELINE else summarize(paired_ratios(p50[c.name], p50[BASELINE])),
            p50_ms=summarize(p50[c.name]).median,
            p99_ms=summarize(p99[c.name]).median,
            errors=errors[c.name],
        )
        for c in competitors
    ]
    section = Section(key, title, "us/op", BASELINE, rows)
    section.notes.append(
        "the value is each round's p50 latency in us, from the scheduled start; "
        "p99 ms is the median of the rounds' p99; "
        f"the generator started requests {max(m for m, _ in late) * 1000:.2f} ms late at p50, "
        f"{max(t for _, t in late) * 1000:.2f} ms at p99 (worst runs); "
        f"{dropped} arrivals dropped for want of a connection (cap {OPEN_CONNECTIONS})"
    )
    return section, p50, p99


def _one_delay(
    delay: float, pg: str, r_url: str, env: dict[str, str], profile: dict[str, Any], progress: Progress
) -> tuple[list[Section], dict[str, float]]:
    """Both sections for one delay, and its derived ratios and counts."""
    tag = f"{delay * 1000:g}ms"
    targets = {"pg": _address(pg, 5432), "redis": _address(r_url, 6379)}
    details = dict(AUTH_VARIANTS)
    with running_proxy(targets, delay, log_dir=LOG_DIR) as proxy:
        progress(f"latency {tag}: calibrating the proxy")
        check = _calibrate(pg, r_url, proxy)
        app_env = {**env, "BENCH_DB_URL": _through(pg, proxy.ports["pg"])}
        app_env["BENCH_REDIS_URL"] = _through(r_url, proxy.ports["redis"])
        specs = [uvicorn_app(name, AUTH_APP, BENCH_AUTH=name, **app_env) for name in NAMES]
        with running(specs, log_dir=LOG_DIR) as servers:
            competitors = [
                Competitor(name, (name,), "/me", login(servers[name], "/login?uid=7"), details.get(name, ""))
                for name in NAMES
            ]
            title = f"Authenticated request, PostgreSQL and Redis {delay * 1000:g} ms away each way"
            closed, samples = measure(
                f"server.latency-{tag}", f"{title}: closed loop", BASELINE, competitors, servers, profile, progress
            )
            slowest = min(NAMES, key=lambda n: summarize(samples[n]).median)
            rate = RATE_SHARE * summarize(samples[slowest]).median
            if rate <= 0:
                raise RuntimeError(f"{slowest} served nothing in the closed loop: no rate to offer")
            opened, p50, p99 = _open_loop(
                f"server.latency-{tag}-open",
                f"{title}: open loop at {rate:.0f} req/s, p50",
                competitors,
                servers,
                rate,
                profile,
                progress,
            )
            progress(f"latency {tag}: counting store writes per request")
            writes = _store_writes(proxy, servers, competitors)
    closed.notes.append(check)
    closed.notes.append(
        f"store writes per request over {COUNT_REQUESTS} sequential requests (a write is about one round trip): "
        + "; ".join(f"{n} " + " + ".join(f"{v:.2g} {route}" for route, v in writes[n].items() if v) for n in NAMES)
    )
    opened.notes.append(
        f"offered rate: {RATE_SHARE:g} x the slowest closed-loop median ({slowest}), the same for every competitor; "
        "Poisson arrivals, the same ones for every competitor in a round"
    )
    derived = {f"derived.latency-round-trips-{name}": sum(writes[name].values()) for name in NAMES}
    derived[f"derived.latency-{tag}-throughput-vs-table"] = pair(samples, "ours", "table")
    derived[f"derived.latency-{tag}-throughput-vs-redis"] = pair(samples, "ours", "redis")
    for q, series in (("p50", p50), ("p99", p99)):
        for other in ("table", "redis"):
            derived[f"derived.latency-{tag}-{q}-vs-{other}"] = pair(series, "ours", other)
    return [closed, opened], derived


def scenario_latency(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Ours, the session table, Redis sessions and the plain load by id, with the stores some way off."""
    pg, r_url = postgres_url(), redis_url()
    problem = postgres_problem(pg) or redis_problem(r_url)
    if problem is not None:
        return [skipped("server.latency", "Authenticated request with stores some way off", problem)], {}
    delays, capped = _settings(profile)
    sections: list[Section] = []
    derived: dict[str, float] = {}
    with database(pg) as suffix, redis_prefix(r_url) as prefix:
        env = {"BENCH_SUFFIX": suffix, "BENCH_REDIS_PREFIX": prefix}
        for delay in delays:
            s, d = _one_delay(delay, pg, r_url, env, capped, progress)
            sections += s
            derived |= d  # the round-trip counts do not depend on the delay: the last one's stay
    return sections, derived
