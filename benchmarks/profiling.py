"""Where the time goes: cProfile over one in-process competitor, top functions by own time.

``python -m benchmarks --profile "ours read"`` profiles that row of the in-process ASGI group
(or any row of the seal, open and keyring groups: ``seal/ours``, ``open/ours``, ...) and
prints the functions that cost the most, so a missed target comes with the place to look.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats

from .inprocess import build_groups

__all__ = ["profile_case"]


def profile_case(name: str, *, loops: int = 20_000, top: int = 25) -> str:
    """Profile ``loops`` operations of the in-process case called ``name``; the report as text."""
    loop = asyncio.new_event_loop()
    try:
        groups = build_groups(loop)
        cases = {f"{g.name}/{c.name}": c for g in groups for c in g.cases}
        plain = [c.name for g in groups for c in g.cases]
        cases |= {c.name: c for g in groups for c in g.cases if plain.count(c.name) == 1}
        if name not in cases:
            raise SystemExit(f"no in-process case {name!r}; choose from: {', '.join(sorted(cases))}")
        case = cases[name]
        case.run(loops // 10)  # warm up
        profiler = cProfile.Profile()
        profiler.enable()
        case.run(loops)
        profiler.disable()
    finally:
        loop.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return f"{name}: {case.detail}\n{out.getvalue()}"
