"""Is the load generator the bottleneck? Its ceiling on a trivial server, and a cross-check with wrk."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import Any

from ..harness import LOG_DIR, Competitor, Progress, Spec, login, measure, run_async, skipped, uvicorn_app
from ..loadgen import build_request, run_load
from ..report import Row, Section
from ..servers import HOST, running
from ..stats import paired_ratios, rotated_orders, summarize
from .middleware import MIDDLEWARE_APP

__all__ = ["scenario_ceiling", "scenario_wrk"]

_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def scenario_ceiling(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """The generator against the trivial asyncio server and the bare Starlette app."""
    specs: list[Spec] = [
        ("trivial", [sys.executable, "-m", "benchmarks.apps.trivial", "{port}"], {}),
        uvicorn_app("bare", MIDDLEWARE_APP, BENCH_VARIANT="none"),
    ]
    with running(specs, log_dir=LOG_DIR) as servers:
        competitors = [
            Competitor("trivial server", ("trivial",), "/health", None, "raw asyncio protocol, fixed response"),
            Competitor("bare app", ("bare",), "/read", None, "uvicorn + Starlette, no session middleware"),
        ]
        section, _ = measure(
            "server.ceiling",
            "Load generator ceiling (trivial server) vs the bare app",
            "trivial server",
            competitors,
            servers,
            profile,
            progress,
        )
    bare = next(r for r in section.rows if r.name == "bare app")
    if bare.ratio is not None:
        section.notes.append(
            f"the bare app reaches {bare.ratio.median:.0%} of the generator's ceiling: "
            + ("the generator is not the bottleneck" if bare.ratio.median < 0.6 else "the generator may be limiting")
        )
    return [section], {}


def _wrk_rps(wrk: str, port: int, cookie: str | None, profile: dict[str, Any]) -> float:
    argv = [wrk, "-t1", f"-c{profile['concurrency']}", f"-d{max(1, round(profile['duration']))}s", "--latency"]
    if cookie is not None:
        argv += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(
        [*argv, f"http://{HOST}:{port}/read"], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    match = _WRK_RPS.search(out)
    return float(match.group(1)) if match else 0.0


def scenario_wrk(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Cross-check the generator: the middleware read scenario measured by wrk and by ours."""
    key, title = "server.wrk", "Cross-check with wrk: bare app vs ours read, both generators"
    wrk = shutil.which("wrk")
    if wrk is None:
        return [skipped(key, title, "wrk is not installed (apt-get install wrk)")], {}
    specs = [
        uvicorn_app("none", MIDDLEWARE_APP, BENCH_VARIANT="none"),
        uvicorn_app("ours", MIDDLEWARE_APP, BENCH_VARIANT="ours"),
    ]
    samples: dict[str, list[float]] = {
        f"{gen} {name}": [] for gen in ("wrk", "python-gen") for name in ("none", "ours read")
    }
    with running(specs, log_dir=LOG_DIR) as servers:
        plan = {"none": (servers["none"], None), "ours read": (servers["ours"], login(servers["ours"], "/login"))}
        for r, order in enumerate(rotated_orders(list(plan), profile["rounds"])):
            for name in order:
                server, cookie = plan[name]
                progress(f"{title}: round {r + 1}, {name}")
                samples[f"wrk {name}"].append(_wrk_rps(wrk, server.port, cookie, profile))
                result = run_async(
                    run_load(
                        [build_request(HOST, server.port, "/read", cookie=cookie)],
                        concurrency=profile["concurrency"],
                        duration=profile["duration"],
                        warmup=profile["warmup"],
                    )
                )
                samples[f"python-gen {name}"].append(result.rps)
    rows = []
    for gen in ("wrk", "python-gen"):
        base = samples[f"{gen} none"]
        for name in ("none", "ours read"):
            values = samples[f"{gen} {name}"]
            ratio = None if name == "none" else summarize(paired_ratios(values, base))
            rows.append(Row(f"{gen}: {name}", "", summarize(values), ratio))
    section = Section(key, title, "req/s", "wrk: none", rows)
    section.notes.append("ratios are against each generator's own 'none' run: the two ratios should agree")
    return [section], {}
