"""Benchmarks for sealed-sessions: ``python -m benchmarks`` (see ``__main__`` for the options).

Layout: ``stats`` (medians, paired ratios, rotated orders, targets), ``inprocess`` (sealing,
opening and ASGI calls without sockets), ``loadgen`` (the asyncio HTTP/1.1 load generator),
``servers`` (start and always stop uvicorn/Node processes on loopback), ``harness`` (the
real-server scenarios), ``apps/`` (the applications they serve), ``report`` (table, JSON, chart),
``targets`` (the claims from the issues) and ``profiling`` (cProfile of one in-process case).
"""
