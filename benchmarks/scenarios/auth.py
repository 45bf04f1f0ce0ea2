"""An authenticated FastAPI request on SQLite and PostgreSQL, eight ways (nine on PostgreSQL); and its scale-out."""

from __future__ import annotations

import os
from typing import Any

from ..harness import LOG_DIR, Competitor, Progress, login, measure, pair, skipped, uvicorn_app
from ..report import Section
from ..servers import running
from ..stores import database, postgres_problem, postgres_url, redis_prefix, redis_problem, redis_url, sqlite_url

__all__ = ["scenario_auth", "scenario_scaleout"]

AUTH_APP = "benchmarks.apps.auth:create_app"
AUTH_VARIANTS = [
    ("ours", "SessionAuth.current_user: one SELECT by id AND token"),
    ("devices", "per-device mode: one SELECT joining user and device row (id, secret hash, expiry)"),
    ("fresh", "fresh_user(max_age=...): ours's SELECT, then the sealed login time's age"),
    ("where", "user(where=User.role == 'member'): ours's SELECT with the condition as a column"),
    ("by-id", "same code path, token condition removed (no revocation)"),
    ("by-id-plain", "db.get(User, id) from the sealed session (no revocation)"),
    ("table", "server-side session table: SELECT session, then SELECT user"),
    ("redis", "starsessions in Redis, then SELECT user"),
    ("raw-asyncpg", "ours's SELECT by id AND token with raw asyncpg, no ORM (PostgreSQL only)"),
]


def _auth_section(
    db_name: str, url: str, profile: dict[str, Any], progress: Progress
) -> tuple[Section, dict[str, list[float]]]:
    r_url = redis_url()
    problem = redis_problem(r_url)
    variants = [
        v
        for v in AUTH_VARIANTS
        if (v[0] != "redis" or problem is None) and (v[0] != "raw-asyncpg" or db_name == "PostgreSQL")
    ]
    with database(url) as suffix, redis_prefix(None if problem else r_url) as prefix:
        env = {"BENCH_DB_URL": url, "BENCH_SUFFIX": suffix, "BENCH_REDIS_URL": r_url, "BENCH_REDIS_PREFIX": prefix}
        specs = [uvicorn_app(name, AUTH_APP, BENCH_AUTH=name, **env) for name, _ in variants]
        with running(specs, log_dir=LOG_DIR) as servers:
            competitors = [
                Competitor(name, (name,), "/me", login(servers[name], "/login?uid=7"), detail)
                for name, detail in variants
            ]
            section, samples = measure(
                f"server.auth-{db_name.lower()}",
                f"Authenticated FastAPI request on {db_name}: session + user load",
                "by-id",
                competitors,
                servers,
                profile,
                progress,
            )
    if problem is not None:
        section.notes.append(f"redis variant skipped: {problem}")
    return section, samples


def scenario_auth(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Ours against the same query without revocation, a session table and Redis sessions."""
    sections: list[Section] = []
    derived: dict[str, float] = {}
    with sqlite_url() as sqlite:
        pg = postgres_url()
        for db_name, problem, url in [("SQLite", None, sqlite), ("PostgreSQL", postgres_problem(pg), pg)]:
            tag = db_name.lower()
            if problem is not None:
                sections.append(skipped(f"server.auth-{tag}", f"Authenticated request on {db_name}", problem))
                continue
            section, samples = _auth_section(db_name, url, profile, progress)
            sections.append(section)
            derived[f"derived.auth-{tag}-vs-by-id"] = pair(samples, "ours", "by-id")
            derived[f"derived.auth-{tag}-vs-by-id-plain"] = pair(samples, "ours", "by-id-plain")  # target >= 1.0
            if "raw-asyncpg" in samples:
                derived[f"derived.auth-{tag}-vs-raw"] = pair(samples, "ours", "raw-asyncpg")  # stretch >= 0.6
            derived[f"derived.auth-{tag}-devices-vs-ours"] = pair(samples, "devices", "ours")
            derived[f"derived.auth-{tag}-fresh-vs-ours"] = pair(samples, "fresh", "ours")
            derived[f"derived.auth-{tag}-where-vs-ours"] = pair(samples, "where", "ours")
            derived[f"derived.auth-{tag}-devices-vs-by-id-plain"] = pair(samples, "devices", "by-id-plain")
            derived[f"derived.auth-{tag}-devices-vs-table"] = pair(samples, "devices", "table")
            derived[f"derived.auth-{tag}-vs-table"] = pair(samples, "ours", "table")
            if "redis" in samples:
                derived[f"derived.auth-{tag}-vs-redis"] = pair(samples, "ours", "redis")
                derived[f"derived.auth-{tag}-devices-vs-redis"] = pair(samples, "devices", "redis")
    return sections, derived


def scenario_scaleout(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """The authenticated request (ours, SQLite) on 1 and on 2 processes sharing the key."""
    with sqlite_url() as url, database(url) as suffix:
        env = {"BENCH_DB_URL": url, "BENCH_SUFFIX": suffix, "BENCH_AUTH": "ours"}
        with running(
            [uvicorn_app("a", AUTH_APP, **env), uvicorn_app("b", AUTH_APP, **env)], log_dir=LOG_DIR
        ) as servers:
            cookie = login(servers["a"], "/login?uid=7")  # sealed by one process, opened by both
            competitors = [
                Competitor("1 process", ("a",), "/me", cookie, "all connections to one uvicorn process"),
                Competitor("2 processes", ("a", "b"), "/me", cookie, "connections split over two processes"),
            ]
            section, _ = measure(
                "server.scaleout",
                "Scale-out: authenticated request (SQLite) on 1 vs 2 processes, same key",
                "1 process",
                competitors,
                servers,
                profile,
                progress,
                concurrency=2 * profile["concurrency"],
            )
    section.notes.append(
        f"{os.cpu_count() or 1} CPUs are shared by the server processes and the load generator: with 2 CPUs the "
        "second process competes with the generator, so this understates scale-out on a bigger machine"
    )
    return [section], {}
