"""Deleting expired device rows: one purge step, and the hourly task the application's lifespan runs.

An expired row never matches the session check; purging only keeps the table from growing. Every
replica runs its own task: the purge is one idempotent ``DELETE``, so they need no coordination.
The first purge runs one interval after startup. A failed purge is logged (by sealed-sessions for a
database outage, here for anything else) and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sealed_sessions.fastapi import DatabaseUnavailable, SessionAuth

from .models import User

__all__ = ["PURGE_INTERVAL", "purge_expired_devices", "purge_periodically", "purging"]

logger = logging.getLogger("examples.demo")

PURGE_INTERVAL = 60 * 60
"""Seconds between two purges: hourly."""


async def purge_expired_devices(auth: SessionAuth[User], maker: async_sessionmaker[AsyncSession]) -> int:
    """One purge: delete every expired device row, of every user, on a fresh database session; how many."""
    async with maker() as db:
        count = await auth.purge_devices(db)
    if count:
        logger.info("deleted %d expired device sessions", count)
    return count


async def purge_periodically(
    purge: Callable[[], Awaitable[int]],
    *,
    every: float,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Call ``purge`` every ``every`` seconds, forever; a failure is logged and the next run tries again."""
    while True:
        await sleep(every)
        try:
            await purge()
        except DatabaseUnavailable:
            pass  # sealed-sessions has logged it, with the exception classes only
        except Exception:  # a maintenance task must not die silently and stop purging for good
            logger.exception("purging expired device sessions failed")


@asynccontextmanager
async def purging(
    purge: Callable[[], Awaitable[int]],
    *,
    every: float,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run :func:`purge_periodically` in the background while the block runs; cancelled when it ends."""
    task = asyncio.create_task(purge_periodically(purge, every=every, sleep=sleep), name="purge-expired-devices")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
