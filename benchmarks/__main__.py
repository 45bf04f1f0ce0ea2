"""``python -m benchmarks``: measure sealed-sessions against the alternatives, side by side.

    python -m benchmarks                   # quick profile: in-process + real servers, a few minutes
    python -m benchmarks --full            # the full profile (more rounds, longer runs)
    python -m benchmarks --inprocess-only  # in-process only, under a minute
    python -m benchmarks --chart docs/benchmark.png
    python -m benchmarks --profile "ours read"   # where the time goes in one in-process case

Ends with a table on stdout, ``results.json`` and a PNG chart (default under benchmarks/results/).
Ratios, not absolute numbers, are the result: machines are noisy, ratios measured in the same
round are not.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import inprocess, scenarios, targets
from .report import Section, render_section, render_targets, sections_to_json, write_chart, write_json
from .stats import evaluate

RESULTS = Path(__file__).parent / "results"

PROFILES: dict[str, dict[str, Any]] = {
    # In-process: rounds per group and seconds per batch. Servers: rounds, seconds per run.
    # latency: seconds added each way by the proxy, and caps on the rounds and seconds per run.
    "quick": {
        "ip_rounds": 9,
        "ip_batch": 0.02,
        "rounds": 3,
        "duration": 1.5,
        "warmup": 0.5,
        "concurrency": 16,
        "latency": {"delays": [0.00025]},
    },
    "full": {
        "ip_rounds": 21,
        "ip_batch": 0.05,
        "rounds": 7,
        "duration": 6.0,
        "warmup": 1.0,
        "concurrency": 32,
        "latency": {"delays": [0.00025, 0.001], "max_rounds": 5, "max_duration": 3.5},
    },
}


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{message}")
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def machine() -> dict[str, Any]:
    import nacl
    import starlette

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "starlette": starlette.__version__,
        "pynacl": nacl.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the full profile (longer, more rounds)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--inprocess-only", action="store_true", help="only the in-process measurements")
    only.add_argument("--servers-only", action="store_true", help="skip the in-process measurements")
    only.add_argument("--profile", metavar="CASE", help="cProfile one in-process case (e.g. 'ours read') and stop")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(scenarios.SCENARIOS),
        help="run only these server scenarios (repeatable); default all",
    )
    parser.add_argument("--rounds", type=int, help="override the profile's number of server rounds")
    parser.add_argument("--duration", type=float, help="override the seconds per server measurement")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for results.json (default %(default)s)")
    parser.add_argument("--chart", type=Path, help="where to write the PNG chart (default OUT/benchmark.png)")
    args = parser.parse_args(argv)

    if args.profile:
        from .profiling import profile_case

        print(profile_case(args.profile))
        return 0
    profile = dict(PROFILES["full" if args.full else "quick"])
    if args.rounds is not None:
        profile["rounds"] = args.rounds
    if args.duration is not None:
        profile["duration"] = args.duration
    chart = args.chart or args.out / "benchmark.png"
    started = time.time()

    sections: list[Section] = []
    derived: dict[str, float] = {}
    wanted = []
    if not args.servers_only:
        wanted += targets.IN_PROCESS
        s, d = inprocess.run(profile, _progress)
        sections += s
        derived |= d
    if not args.inprocess_only:
        s, d = scenarios.run(profile, scenarios=args.scenario, progress=_progress)
        sections += s
        derived |= d
        wanted += targets.SERVER
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")

    ratios: dict[str, float] = dict(derived)
    for section in sections:
        ratios |= section.ratio_medians()
    judged = evaluate(wanted, ratios)

    host = machine()
    meta: dict[str, Any] = {
        "profile": "full" if args.full else "quick",
        "settings": profile,
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": host,
    }
    print(
        f"sealed-sessions benchmarks, {meta['profile']} profile, {meta['started']}, "
        f"Python {host['python']} on {host['platform']}, {host['cpus']} CPUs"
    )
    for section in sections:
        print()
        print(render_section(section))
    targeted = {t.key for t in wanted}
    informative = {key: value for key, value in sorted(derived.items()) if key not in targeted}
    if informative:
        print("\n== Other derived ratios (no target)")
        print("\n".join(f"  {key}: {value:.3f}" for key, value in informative.items()))
    print()
    print(render_targets(judged))
    out = args.out / "results.json"
    write_json(out, sections_to_json(sections, judged, meta) | {"derived": derived})
    write_chart(chart, sections, f"sealed-sessions benchmarks ({meta['profile']} profile; ratios, not absolute times)")
    print(f"\nwrote {out} and {chart} in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
