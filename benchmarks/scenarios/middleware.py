"""Session middlewares on a real server (none, Starlette's, ours, starsessions), and cookie sizes."""

from __future__ import annotations

from typing import Any

from ..fixtures import SESSION_DATA, ours_cookie
from ..harness import LOG_DIR, Competitor, Progress, login, measure, pair, uvicorn_app
from ..report import Section
from ..servers import running
from ..stores import redis_prefix, redis_problem, redis_url

__all__ = ["MIDDLEWARE_APP", "scenario_middleware", "scenario_sizes"]

MIDDLEWARE_APP = "benchmarks.apps.middleware:create_app"


def scenario_middleware(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """GET with a valid cookie, reading one key, writing, or due for renewal; starsessions when Redis answers."""
    url = redis_url()
    problem = redis_problem(url)
    with redis_prefix(None if problem else url) as prefix:
        specs = [uvicorn_app(v, MIDDLEWARE_APP, BENCH_VARIANT=v) for v in ("none", "starlette", "ours", "ours-idle")]
        if problem is None:
            specs.append(
                uvicorn_app(
                    "starsessions",
                    MIDDLEWARE_APP,
                    BENCH_VARIANT="starsessions",
                    BENCH_REDIS_URL=url,
                    BENCH_REDIS_PREFIX=prefix,
                )
            )
        with running(specs, log_dir=LOG_DIR) as servers:
            s_cookie = login(servers["starlette"], "/login")
            o_cookie = login(servers["ours"], "/login")
            # Last sealed 1000 s ago with a one-hour idle timeout: past a quarter of the window, so due.
            stale = ours_cookie(SESSION_DATA, last_active_ago=1000)
            competitors = [
                Competitor("none", ("none",), "/read", None, "uvicorn + Starlette, no session middleware"),
                Competitor("starlette", ("starlette",), "/read", s_cookie, "Starlette's SessionMiddleware, read"),
                Competitor("ours read", ("ours",), "/read", o_cookie, "sealed_sessions, valid cookie, reads one key"),
                Competitor("ours write", ("ours",), "/write", o_cookie, "sealed_sessions, writes on every request"),
                Competitor(
                    "starlette write", ("starlette",), "/write", s_cookie, "Starlette's, writes on every request"
                ),
                Competitor(
                    "ours renewal due", ("ours-idle",), "/read", stale, "idle_timeout set, cookie due for renewal"
                ),
            ]
            if problem is None:
                st_cookie = login(servers["starsessions"], "/login")
                competitors.append(
                    Competitor("starsessions redis", ("starsessions",), "/read", st_cookie, "starsessions + Redis")
                )
            section, samples = measure(
                "server.middleware",
                "Session middleware on a real server: GET, valid cookie, endpoint reads one key",
                "none",
                competitors,
                servers,
                profile,
                progress,
            )
    if problem is not None:
        section.notes.append(f"starsessions skipped: {problem}")
    return [section], {
        "derived.server-read-vs-starlette": pair(samples, "ours read", "starlette"),
        "derived.server-write-vs-starlette": pair(samples, "ours write", "starlette write"),
    }


def scenario_sizes(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Our key ring of 1 against 16 keys, and cookies of 100 bytes to 2.8 kB, ours and Starlette's."""
    specs = [
        uvicorn_app("none", MIDDLEWARE_APP, BENCH_VARIANT="none"),
        uvicorn_app("ours", MIDDLEWARE_APP, BENCH_VARIANT="ours"),
        uvicorn_app("ours16", MIDDLEWARE_APP, BENCH_VARIANT="ours", BENCH_KEYS="16"),
        uvicorn_app("starlette", MIDDLEWARE_APP, BENCH_VARIANT="starlette"),
    ]
    # The padding is chosen so the largest cookie stays under 4096 bytes with its attributes.
    sizes = [("100 B", 0), ("1 kB", 900), ("2.8 kB", 2800)]
    with running(specs, log_dir=LOG_DIR) as servers:
        competitors = [Competitor("none", ("none",), "/read", None, "no session middleware")]
        for label, pad in sizes:
            cookie = login(servers["ours"], f"/login?size={pad}")
            competitors.append(
                Competitor(f"ours {label}", ("ours",), "/read", cookie, f"ours, 1 key, cookie of {len(cookie)} chars")
            )
        cookie16 = login(servers["ours16"], "/login")
        competitors.append(
            Competitor("ours 16 keys", ("ours16",), "/read", cookie16, "ours, ring of 16 keys, small cookie")
        )
        for label, pad in (sizes[0], sizes[-1]):
            cookie = login(servers["starlette"], f"/login?size={pad}")
            competitors.append(
                Competitor(f"starlette {label}", ("starlette",), "/read", cookie, f"cookie of {len(cookie)} chars")
            )
        section, samples = measure(
            "server.sizes",
            "Key ring 1 vs 16 and session size: GET, endpoint reads one key",
            "none",
            competitors,
            servers,
            profile,
            progress,
        )
    return [section], {"derived.ring16-vs-ring1": pair(samples, "ours 16 keys", "ours 100 B")}
