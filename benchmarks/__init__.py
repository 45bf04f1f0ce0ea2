"""Benchmarks for sealed-sessions: ``python -m benchmarks`` (see ``__main__`` for the options).

Layout: ``stats`` (medians, paired ratios, rotated orders, targets), ``fixtures`` (the keys and
the session every benchmark uses), ``inprocess/`` (sealing, opening and ASGI calls without
sockets, and their runner), ``loadgen`` (the asyncio HTTP/1.1 load generator), ``servers``
(start and always stop uvicorn/Node processes on loopback), ``stores`` (Redis, PostgreSQL,
SQLite for the scenarios that need them), ``harness`` (one real-server comparison),
``scenarios/`` (the real-server scenarios), ``apps/`` (the applications they serve), ``report``
(table, JSON, chart), ``targets`` (the claims the project makes) and ``profiling`` (cProfile of
one in-process case).
"""
