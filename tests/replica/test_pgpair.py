"""The throwaway primary + streaming replica of pgpair.py, checked through the URLs the feature tests use."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Column, MetaData, Table, Text, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.replica.pgpair import PgPair, PgPairError


@dataclass
class Engines:
    """SQLAlchemy engines on both servers and a fresh table (created on the primary, replicated)."""

    primary: AsyncEngine
    replica: AsyncEngine
    table: Table

    async def insert(self, value: str) -> None:
        """Commit a row on the primary."""
        async with self.primary.begin() as conn:
            await conn.execute(insert(self.table).values(value=value))

    async def replica_values(self) -> list[str]:
        """The table's values as the replica sees them now, sorted."""
        async with self.replica.connect() as conn:
            return list((await conn.scalars(select(self.table.c.value).order_by(self.table.c.value))).all())


@pytest.fixture
async def engines(pg_pair: PgPair) -> AsyncIterator[Engines]:
    """Engines on the pair's two URLs (no pooling: servers restart) and a table already on the replica."""
    primary = create_async_engine(pg_pair.primary_url, poolclass=NullPool)
    replica = create_async_engine(pg_pair.replica_url, poolclass=NullPool)
    table = Table(f"pgpair_{secrets.token_hex(4)}", MetaData(), Column("value", Text, primary_key=True))
    async with primary.begin() as conn:
        await conn.run_sync(table.create)
    pg_pair.wait_caught_up()
    yield Engines(primary, replica, table)
    await primary.dispose()
    await replica.dispose()


def test_servers_listen_on_loopback_ports_with_the_replica_in_recovery(pg_pair: PgPair) -> None:
    """Both URLs name 127.0.0.1 on distinct ports; only the replica is in recovery, and the primary sees it stream."""
    assert pg_pair.primary_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert pg_pair.replica_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert pg_pair.primary.port != pg_pair.replica.port
    assert pg_pair.query(pg_pair.primary, "SELECT pg_is_in_recovery(), current_setting('listen_addresses')") == (
        "f|127.0.0.1"
    )
    assert pg_pair.query(pg_pair.replica, "SELECT pg_is_in_recovery()") == "t"
    assert pg_pair.query(pg_pair.primary, "SELECT state FROM pg_stat_replication") == "streaming"


async def test_row_written_on_primary_appears_on_replica_within_measured_lag(pg_pair: PgPair, engines: Engines) -> None:
    """A row committed on the primary is readable on the replica once wait_caught_up returns its measured lag."""
    await engines.insert("written")
    lag = pg_pair.wait_caught_up(timeout=5)
    assert 0 <= lag < 5
    assert await engines.replica_values() == ["written"]


async def test_paused_replay_hides_a_row_until_resumed(pg_pair: PgPair, engines: Engines) -> None:
    """With replay paused a committed row stays invisible on the replica; after resume it appears."""
    pg_pair.pause_replay()
    await engines.insert("held back")
    assert await engines.replica_values() == []
    pg_pair.resume_replay()
    pg_pair.wait_caught_up(timeout=5)
    assert await engines.replica_values() == ["held back"]


def test_waiting_on_a_paused_replica_times_out_with_a_clear_error(pg_pair: PgPair) -> None:
    """wait_caught_up gives up after its timeout and says that replay is paused."""
    pg_pair.pause_replay()
    pg_pair.query(pg_pair.primary, "SELECT pg_current_xact_id()")  # a commit the paused replica cannot replay
    with pytest.raises(PgPairError, match=r"timed out after 0\.3s .*: replay is paused"):
        pg_pair.wait_caught_up(timeout=0.3)


async def test_replica_refuses_writes(engines: Engines) -> None:
    """A write on the replica fails as a read-only transaction."""
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with engines.replica.begin() as conn:
            await conn.execute(insert(engines.table).values(value="nope"))


async def test_replica_stops_and_starts_and_catches_up(pg_pair: PgPair, engines: Engines) -> None:
    """A stopped replica refuses connections; started again, it streams and replays what it missed."""
    pg_pair.stop_replica()
    assert not pg_pair.is_running(pg_pair.replica)
    with pytest.raises(PgPairError, match="replica"):
        pg_pair.query(pg_pair.replica, "SELECT 1")
    await engines.insert("while stopped")
    pg_pair.start_replica()
    pg_pair.wait_streaming(timeout=10)
    pg_pair.wait_caught_up(timeout=5)
    assert await engines.replica_values() == ["while stopped"]


async def test_primary_stops_and_starts_and_the_replica_reconnects(pg_pair: PgPair, engines: Engines) -> None:
    """With the primary stopped the replica still serves reads; started again, the replica streams from it."""
    await engines.insert("before")
    pg_pair.wait_caught_up(timeout=5)
    pg_pair.stop_primary()
    assert await engines.replica_values() == ["before"]
    pg_pair.start_primary()
    pg_pair.wait_streaming(timeout=10)
    await engines.insert("after")
    pg_pair.wait_caught_up(timeout=5)
    assert await engines.replica_values() == ["after", "before"]
