"""The real-server runner: one comparison of competitors served by uvicorn (or Node) on loopback.

:func:`measure` drives every competitor with :mod:`benchmarks.loadgen` for ``profile['rounds']``
rounds, rotating the order every round (:func:`benchmarks.stats.rotated_orders`), and takes
throughput ratios per round against the section's baseline. The scenarios that use it are in
:mod:`benchmarks.scenarios`; the servers are started, and always stopped, by
:func:`benchmarks.servers.running`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .loadgen import LoadResult, build_request, read_response, run_load
from .report import Row, Section
from .servers import HOST, ROOT, Server
from .stats import paired_ratios, rotated_orders, summarize

__all__ = [
    "LOG_DIR",
    "Competitor",
    "Progress",
    "Spec",
    "login",
    "measure",
    "pair",
    "run_async",
    "skipped",
    "uvicorn_app",
]

T = TypeVar("T")
Progress = Callable[[str], None]
Spec = tuple[str, Sequence[str] | None, Mapping[str, str]]
"""A server to start: name, command (``None``: uvicorn serving ``BENCH_APP``), extra environment."""
LOG_DIR = ROOT / "benchmarks" / "results" / "logs"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the standard loop is only slower
        return asyncio.run(coro)
    return uvloop.run(coro)


def uvicorn_app(name: str, app: str, **env: str) -> Spec:
    """uvicorn serving the factory ``app`` (``module:function``), configured by ``env``."""
    return (name, None, {"BENCH_APP": app, **env})


@dataclass
class Competitor:
    """One row: requests for ``path`` with ``cookie`` to the named server(s)."""

    name: str
    servers: tuple[str, ...]
    path: str
    cookie: str | None
    detail: str


async def _get_cookie(port: int, path: str) -> str:
    """GET ``path`` once and return the first ``Set-Cookie`` as ``name=value``."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        status, headers, body, _ = await read_response(reader)
    finally:
        writer.close()
    if status != 200 or b"set-cookie" not in headers:
        raise RuntimeError(f"GET {path} on port {port} gave {status} without a cookie: {body[:200]!r}")
    return headers[b"set-cookie"].split(b"\n")[0].split(b";")[0].decode("latin-1")


def login(server: Server, path: str) -> str:
    """The cookie ``server`` sets on ``GET path``, as ``name=value``, to replay in the measurements."""
    return run_async(_get_cookie(server.port, path))


def measure(
    key: str,
    title: str,
    baseline: str,
    competitors: Sequence[Competitor],
    servers: dict[str, Server],
    profile: dict[str, Any],
    progress: Progress,
    *,
    concurrency: int | None = None,
) -> tuple[Section, dict[str, list[float]]]:
    """Measure every competitor for ``profile['rounds']`` rounds in rotated order; requests per second."""
    by_name = {c.name: c for c in competitors}
    samples: dict[str, list[float]] = {c.name: [] for c in competitors}
    p50: dict[str, list[float]] = {c.name: [] for c in competitors}
    p99: dict[str, list[float]] = {c.name: [] for c in competitors}
    errors = dict.fromkeys(samples, 0)
    rounds = profile["rounds"]
    for r, order in enumerate(rotated_orders(list(by_name), rounds)):
        for i, name in enumerate(order):
            progress(f"{title}: round {r + 1}/{rounds}, {i + 1}/{len(order)} {name}")
            c = by_name[name]
            requests = [build_request(HOST, servers[s].port, c.path, cookie=c.cookie) for s in c.servers]
            result: LoadResult = run_async(
                run_load(
                    requests,
                    concurrency=concurrency or profile["concurrency"],
                    duration=profile["duration"],
                    warmup=profile["warmup"],
                    max_requests=profile.get("max_requests", 1_000_000),
                )
            )
            samples[name].append(result.rps)
            if result.latencies:
                p50[name].append(result.p(50) or 0.0)
                p99[name].append(result.p(99) or 0.0)
            errors[name] += result.errors
    base = samples[baseline]
    rows = []
    for c in competitors:
        values = samples[c.name]
        ratio = None if c.name == baseline else summarize(paired_ratios(values, base))
        rows.append(
            Row(
                c.name,
                c.detail,
                summarize(values),
                ratio,
                p50_ms=summarize(p50[c.name]).median if p50[c.name] else None,
                p99_ms=summarize(p99[c.name]).median if p99[c.name] else None,
                errors=errors[c.name],
            )
        )
    return Section(key, title, "req/s", baseline, rows), samples


def pair(samples: dict[str, list[float]], a: str, b: str) -> float:
    """The median per-round ratio of ``a`` to ``b``."""
    return summarize(paired_ratios(samples[a], samples[b])).median


def skipped(key: str, title: str, why: str) -> Section:
    """The section of a scenario that could not run, saying why."""
    return Section(key, title, "req/s", "-", notes=[f"skipped: {why}"])
