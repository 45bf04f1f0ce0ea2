"""The check on a read replica (``SessionAuth(read_db=...)``), with two SQLite files standing in for the
primary and a replica whose contents the test controls (the real streaming pair is in tests/replica/)."""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built here.

import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from sealed_sessions.fastapi import SessionAuth
from tests.helpers import ClientFactory

from .device_harness import make_device_model
from .harness import make_user_model
from .replica_app import replica_app


@dataclass
class Pair:
    """An app whose check reads ``replica`` and writes ``primary``; statements recorded per database."""

    app: FastAPI
    auth: SessionAuth[Any]
    User: Any
    primary: AsyncEngine
    replica: AsyncEngine
    primary_file: Path
    replica_file: Path
    sent: dict[str, list[str]]
    state: dict[str, bool]

    async def sync_replica(self) -> None:
        """Make the replica an exact copy of the primary, as a caught-up streaming replica is."""
        await self.replica.dispose()
        shutil.copyfile(self.primary_file, self.replica_file)


async def build_pair(tmp_path: Path, *, devices: bool = False) -> Pair:
    base, user = make_user_model("int", "users")
    device = make_device_model(base, user, "devices") if devices else None
    primary_file, replica_file = tmp_path / "primary.db", tmp_path / "replica.db"
    primary = create_async_engine(f"sqlite+aiosqlite:///{primary_file}")
    replica = create_async_engine(f"sqlite+aiosqlite:///{replica_file}")
    async with primary.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    sent: dict[str, list[str]] = {"primary": [], "replica": []}
    state = {"replica_down": False, "primary_down": False}
    down = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    for name, engine in (("primary", primary), ("replica", replica)):

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any, _name: str = name) -> None:
            sent[_name].append(statement)

    app, auth = replica_app(
        user,
        lambda: down if state["primary_down"] else primary,
        lambda: down if state["replica_down"] else replica,
        device=device,
    )
    pair = Pair(app, auth, user, primary, replica, primary_file, replica_file, sent, state)
    async with AsyncSession(primary) as db:
        db.add(user(name="ada"))
        await db.commit()
    await pair.sync_replica()
    return pair


async def logged_in(pair: Pair, client: httpx.AsyncClient) -> None:
    assert (await client.post("/login/ada")).status_code == 200
    pair.sent["primary"].clear()
    pair.sent["replica"].clear()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    built = await build_pair(tmp_path)
    yield built
    await built.primary.dispose()
    await built.replica.dispose()


@pytest.mark.case("H9")
async def test_a_hit_on_the_replica_sends_nothing_to_the_primary(pair: Pair, client_factory: ClientFactory) -> None:
    """An authenticated request whose session matches on the replica runs one SELECT there and none on the primary."""
    async with client_factory(pair.app, base_url="http://testserver") as client:
        await logged_in(pair, client)
        assert (await client.get("/me")).json() == {"name": "ada"}
    assert [s.split()[0] for s in pair.sent["replica"]] == ["SELECT"]
    assert pair.sent["primary"] == []


async def test_a_miss_on_the_replica_is_confirmed_on_the_primary(pair: Pair, client_factory: ClientFactory) -> None:
    """A session the lagging replica cannot match (a token rotated just now) is checked on the primary, not refused."""
    async with client_factory(pair.app, base_url="http://testserver") as client:
        async with AsyncSession(pair.primary) as db:  # the primary moved on; the replica has not replayed it
            await db.execute(update(pair.User).values(session_token="fresh-token-the-replica-has-not-seen"))
            await db.commit()
        await client.post("/login/ada")
        response = await client.get("/me")
    assert response.status_code == 200
    assert sum(s.startswith("SELECT") for s in pair.sent["primary"]) >= 1


async def test_a_revocation_is_seen_once_the_replica_replays_it(pair: Pair, client_factory: ClientFactory) -> None:
    """A revoked session still matches on a replica that has not replayed the revoke, and is refused once it has."""
    async with client_factory(pair.app, base_url="http://testserver") as client:
        await logged_in(pair, client)
        cookie = client.cookies["session"]
        assert (await client.post("/revoke")).status_code == 200  # on the primary
        stale = await client.get("/me", headers={"cookie": f"session={cookie}"})
        assert stale.status_code == 200  # the documented lag: the replica still holds the old token
        await pair.sync_replica()
        assert (await client.get("/me", headers={"cookie": f"session={cookie}"})).status_code == 401


async def test_routes_on_the_primary_see_a_revocation_at_once(pair: Pair, client_factory: ClientFactory) -> None:
    """primary_user checks on the primary only: a revoked session is refused there before any replica replays it."""
    async with client_factory(pair.app, base_url="http://testserver") as client:
        await logged_in(pair, client)
        cookie = client.cookies["session"]
        await client.post("/revoke")
        response = await client.get("/settings", headers={"cookie": f"session={cookie}"})
    assert response.status_code == 401
    assert not any(s.startswith("SELECT") and "users" in s for s in pair.sent["replica"])


async def test_a_replica_that_is_down_falls_back_to_the_primary(
    pair: Pair, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With the replica unreachable, the check runs on the primary: no 5xx, no cookie cleared, a warning logged."""
    caplog.set_level(logging.WARNING, logger="sealed_sessions")
    async with client_factory(pair.app, base_url="http://testserver") as client:
        await logged_in(pair, client)
        pair.state["replica_down"] = True
        response = await client.get("/me")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "replica_fallback" in [getattr(r, "reason", None) for r in caplog.records]


async def test_a_primary_that_is_down_keeps_reads_working_and_writes_answer_503(
    pair: Pair, client_factory: ClientFactory
) -> None:
    """With the primary down, replica hits keep authenticating; a revoke (a write) answers 503 and nothing is lost."""
    async with client_factory(pair.app, base_url="http://testserver") as client:
        await logged_in(pair, client)
        pair.state["primary_down"] = True
        assert (await client.get("/me")).status_code == 200
        revoke = await client.post("/revoke")
        assert revoke.status_code == 503 and revoke.headers["retry-after"] == "5"
        pair.state["primary_down"] = False
        assert (await client.get("/me")).status_code == 200  # the session was neither revoked nor cleared


async def test_device_last_seen_is_written_on_the_primary(tmp_path: Path, client_factory: ClientFactory) -> None:
    """In device mode with a replica, the check reads the replica and the last-seen write goes to the primary."""
    pair = await build_pair(tmp_path, devices=True)
    try:
        async with client_factory(pair.app, base_url="http://testserver") as client:
            assert (await client.post("/login/ada")).status_code == 200
            await pair.sync_replica()  # the replica now has the device row
            pair.sent["primary"].clear()
            pair.sent["replica"].clear()
            pair.auth.clock.advance(pair.auth.check.seen_interval)  # type: ignore[attr-defined]
            assert (await client.get("/me")).status_code == 200
        assert [s.split()[0] for s in pair.sent["replica"]] == ["SELECT"]
        assert [s.split()[0].upper() for s in pair.sent["primary"]] == ["UPDATE"]
    finally:
        await pair.primary.dispose()
        await pair.replica.dispose()
