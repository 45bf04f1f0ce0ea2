"""The stores some server scenarios need (Redis, PostgreSQL, a SQLite file): found, filled, emptied.

Only loopback addresses are used. A store that does not answer makes its scenario or row skip
with the reason; whatever a scenario creates (tables, Redis keys) is removed afterwards, even
when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "database",
    "is_loopback",
    "postgres_problem",
    "postgres_url",
    "redis_prefix",
    "redis_problem",
    "redis_url",
    "sqlite_url",
]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redis_url() -> str:
    return os.environ.get("SEALED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_problem(url: str) -> str | None:
    """``None`` if Redis answers at ``url``, else why not."""
    if not is_loopback(url):
        return f"{url} is not a loopback address"
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as exc:  # any failure means "not available": say which, then skip
        return f"Redis at {url} does not answer ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def redis_prefix(url: str | None) -> Iterator[str]:
    """A per-run key prefix; every key under it is deleted afterwards (``url=None``: nothing to delete)."""
    prefix = f"bench.{secrets.token_hex(4)}."
    try:
        yield prefix
    finally:
        if url is not None:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1)
            try:
                keys = list(client.scan_iter(match=prefix + "*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


def postgres_url() -> str:
    return os.environ.get("SEALED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def postgres_problem(url: str) -> str | None:
    """``None`` if PostgreSQL answers at ``url``, else why not."""
    if not is_loopback(url):
        return f"{url} is not a loopback address"

    async def ping() -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, connect_args={"timeout": 2})
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(ping())
    except Exception as exc:  # any failure means "not available": say which, then skip
        return f"PostgreSQL at {url} does not answer ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    """A SQLite database file in a temporary folder, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="sealed-bench-"))
    try:
        yield f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def database(url: str) -> Iterator[str]:
    """Per-run tables (unique suffix) with users for the auth app; dropped afterwards whatever happens."""
    from .apps import auth

    suffix = secrets.token_hex(4)
    asyncio.run(auth.setup(url, suffix))
    try:
        yield suffix
    finally:
        asyncio.run(auth.teardown(url, suffix))
