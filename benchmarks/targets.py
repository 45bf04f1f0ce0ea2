"""The claims the benchmarks check, as ratio targets: what sealing, revocation and scale-out cost.

Each key names a median ratio in the results: ``<section>.<row>`` is that row against its
section's baseline; keys under ``derived.`` are computed from several rows (see ``inprocess`` and ``scenarios``),
or, for ``derived.replica-primary-statements-per-1000``, counted: statements per 1,000 requests.
"""

from __future__ import annotations

from .inprocess.toolkit import TOOLKIT_ROWS
from .stats import Target

__all__ = ["IN_PROCESS", "SERVER"]

IN_PROCESS = [
    Target("inprocess.seal.ours", "seal: ours / raw nacl.bindings + base64url", "<=", 1.3),
    Target("inprocess.open.ours", "open: ours / raw nacl.bindings + base64url + json.loads", "<=", 1.3),
    Target("inprocess.keyring.16 keys, oldest", "open with 16 keys / 1 key (within 10% noise)", "<=", 1.10),
    Target(
        "derived.asgi-read-overhead-share",
        "ASGI read: cost ours adds / cost Starlette's SessionMiddleware adds",
        "<=",
        0.5,
    ),
    Target(
        "derived.asgi-read-rich-overhead-share",
        "ASGI read, session with a list and a dict: cost ours adds / cost Starlette's adds",
        "<=",
        0.5,
    ),
    *(
        Target(f"inprocess.toolkit.{row}", f"read path with {row} on but unused / all off, within 5%", "<=", 1.05)
        for row in TOOLKIT_ROWS
    ),
]

SERVER = [
    Target("server.middleware.ours read", "server read path: ours / bare app throughput", ">=", 0.80),
    Target("derived.server-read-vs-starlette", "server read path: ours / Starlette's SessionMiddleware", ">=", 1.25),
    Target("server.middleware.ours write", "server writing path: ours / bare app throughput", ">=", 0.65),
    Target("derived.server-write-vs-starlette", "server writing path: ours / Starlette's, both writing", ">=", 1.15),
    Target("derived.auth-sqlite-vs-by-id", "auth (SQLite): ours / load-by-id, within 5%", ">=", 0.95),
    Target("derived.auth-sqlite-vs-by-id-plain", "auth (SQLite): ours / plain db.get, no revocation", ">=", 1.0),
    Target("derived.auth-sqlite-vs-table", "auth (SQLite): ours / two-query session table", ">=", 1.3),
    Target("derived.auth-sqlite-vs-redis", "auth (SQLite): ours / Redis sessions + user load", ">=", 1.3),
    Target(
        "derived.auth-sqlite-devices-vs-ours", "auth (SQLite): device mode / user-token mode, within 5%", ">=", 0.95
    ),
    Target("derived.auth-sqlite-fresh-vs-ours", "auth (SQLite): fresh_user / current_user, within 5%", ">=", 0.95),
    Target("derived.auth-sqlite-where-vs-ours", "auth (SQLite): user(where=...) / current_user, within 5%", ">=", 0.95),
    Target("derived.auth-postgresql-vs-by-id", "auth (PostgreSQL): ours / load-by-id, within 5%", ">=", 0.95),
    Target(
        "derived.auth-postgresql-vs-by-id-plain", "auth (PostgreSQL): ours / plain db.get, no revocation", ">=", 1.0
    ),
    Target(
        "derived.auth-postgresql-vs-raw",
        "stretch: auth (PostgreSQL): ours (ORM user) / the same SELECT on raw asyncpg",
        ">=",
        0.6,
    ),
    Target("derived.auth-postgresql-vs-table", "auth (PostgreSQL): ours / two-query session table", ">=", 1.3),
    Target("derived.auth-postgresql-vs-redis", "auth (PostgreSQL): ours / Redis sessions + user load", ">=", 1.3),
    Target(
        "derived.auth-postgresql-devices-vs-ours",
        "auth (PostgreSQL): device mode / user-token mode, within 5%",
        ">=",
        0.95,
    ),
    Target(
        "derived.auth-postgresql-fresh-vs-ours", "auth (PostgreSQL): fresh_user / current_user, within 5%", ">=", 0.95
    ),
    Target(
        "derived.auth-postgresql-where-vs-ours",
        "auth (PostgreSQL): user(where=...) / current_user, within 5%",
        ">=",
        0.95,
    ),
    Target(
        "derived.latency-0.25ms-p50-vs-table",
        "stores 0.25 ms away: ours p50 / two-query session table p50 (open loop)",
        "<=",
        0.75,
    ),
    Target(
        "derived.latency-0.25ms-p50-vs-redis",
        "stores 0.25 ms away: ours p50 / Redis sessions + user load p50 (open loop)",
        "<=",
        0.75,
    ),
    Target("server.scaleout.2 processes", "scale-out: 2 processes / 1 process", ">=", 1.6),
    Target(
        "derived.replica-primary-statements-per-1000",
        "read replica: statements reaching the primary per 1,000 requests with read_db, no session missing",
        "<=",
        0,
    ),
    Target(
        "server.replica.ours+replica", "read replica: check on the replica / on the primary, within 10%", ">=", 0.90
    ),
]
