"""``SessionAuth(read_db=...)`` against a real PostgreSQL primary and streaming replica (pgpair.py).

Each test builds a small FastAPI app whose check reads the replica and whose writes go to the
primary, counts the statements each engine is sent, and drives the pair: replay paused (lag held
open), replica stopped, primary stopped. tests/fastapi/test_read_replica.py covers the same rules
with two SQLite files; this file shows them on real streaming replication, with measured lag.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built here.

import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from sealed_sessions.fastapi import REPLICA_RETRY, SessionAuth
from tests.fastapi.device_harness import make_device_model
from tests.fastapi.harness import make_user_model
from tests.fastapi.replica_app import replica_app
from tests.replica.pgpair import PgPair

REFUSED_WITHIN_MARGIN = 1.0
"""Seconds a revocation may take to be refused on the replica beyond the replay lag just measured."""
POLL_LIMIT = 10.0
"""Seconds the poll loop may run before it counts as never refused (a guard against hanging)."""

logger = logging.getLogger(__name__)


@dataclass
class ReplicaApp:
    """An app on the pair, its engines, and the statements each engine was sent."""

    app: FastAPI
    auth: SessionAuth[Any]
    User: Any
    primary: AsyncEngine
    replica: AsyncEngine
    sent: dict[str, list[str]] = field(default_factory=lambda: {"primary": [], "replica": []})

    def forget(self) -> None:
        """Start counting statements afresh."""
        for statements in self.sent.values():
            statements.clear()

    def selects(self, engine: str) -> int:
        """How many SELECTs ``engine`` ("primary" or "replica") was sent since :meth:`forget`."""
        return sum(s.lstrip().upper().startswith("SELECT") for s in self.sent[engine])

    async def add_user(self, name: str) -> None:
        """Commit a user on the primary."""
        async with AsyncSession(self.primary) as db:
            db.add(self.User(name=name))
            await db.commit()

    async def row(self, name: str) -> tuple[Any, ...]:
        """The user's row on the primary, every column."""
        table = self.User.__table__
        async with self.primary.connect() as conn:
            return tuple((await conn.execute(select(table).where(table.c.name == name))).one())

    async def dispose(self) -> None:
        """Drop pooled connections (after a server stopped or started)."""
        await self.primary.dispose()
        await self.replica.dispose()


def build_app(pair: PgPair, *, devices: bool = False) -> ReplicaApp:
    """A FastAPI app whose ``SessionAuth`` checks on the pair's replica and writes to its primary."""
    suffix = secrets.token_hex(4)
    base, user = make_user_model("int", f"users_{suffix}")
    device = make_device_model(base, user, f"devices_{suffix}") if devices else None
    primary = create_async_engine(pair.primary_url, pool_pre_ping=True)
    replica = create_async_engine(pair.replica_url, pool_pre_ping=True)
    built = ReplicaApp(FastAPI(), None, user, primary, replica)  # type: ignore[arg-type]  # app and auth set below
    for name, engine in (("primary", primary), ("replica", replica)):

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any, _name: str = name) -> None:
            built.sent[_name].append(statement)

    built.app, built.auth = replica_app(user, lambda: primary, lambda: replica, device=device)
    return built


@pytest.fixture
async def on_pair(pg_pair: PgPair) -> AsyncIterator[ReplicaApp]:
    """A fresh app in user-token mode, its tables created on the primary and replayed by the replica."""
    async for built in _app_on(pg_pair, devices=False):
        yield built


@pytest.fixture
async def devices_on_pair(pg_pair: PgPair) -> AsyncIterator[ReplicaApp]:
    """As ``on_pair``, in device mode."""
    async for built in _app_on(pg_pair, devices=True):
        yield built


async def _app_on(pair: PgPair, *, devices: bool) -> AsyncIterator[ReplicaApp]:
    built = build_app(pair, devices=devices)
    metadata = built.User.metadata
    async with built.primary.begin() as conn:
        await conn.run_sync(metadata.create_all)
    pair.wait_caught_up()
    try:
        yield built
    finally:
        pair.ensure_streaming()  # a test may have stopped a server or paused replay
        await built.dispose()
        async with built.primary.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await built.dispose()


def client(app: FastAPI) -> httpx.AsyncClient:
    """An in-process client; the cookie is named ``session`` (plain HTTP, as behind a TLS-ending balancer)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30)


async def replay(browser: httpx.AsyncClient, path: str, cookie: str) -> httpx.Response:
    """Send ``cookie`` by hand (a copy of the cookie, as an attacker or another tab holds it)."""
    browser.cookies.clear()
    response = await browser.get(path, headers={"cookie": f"session={cookie}"})
    browser.cookies.clear()
    return response


@pytest.mark.case("R1")
async def test_login_while_the_replica_lags_is_confirmed_on_the_primary(pg_pair: PgPair, on_pair: ReplicaApp) -> None:
    """A user created and logged in while replay is paused gets 200: the replica's miss is confirmed on the primary."""
    pg_pair.pause_replay()
    await on_pair.add_user("ada")
    async with client(on_pair.app) as browser:
        assert (await browser.post("/login/ada")).status_code == 200
        on_pair.forget()
        response = await browser.get("/me")
        assert response.status_code == 200 and response.json() == {"name": "ada"}
        assert "set-cookie" not in response.headers  # not logged out
        assert (on_pair.selects("replica"), on_pair.selects("primary")) == (1, 1)  # a miss, then the judge

        pg_pair.resume_replay()
        pg_pair.wait_caught_up()
        on_pair.forget()
        assert (await browser.get("/me")).status_code == 200
        assert (on_pair.selects("replica"), on_pair.sent["primary"]) == (1, [])  # a hit: the primary is not asked


@pytest.mark.case("R2")
async def test_a_revocation_is_refused_once_the_replica_replays_it(
    pg_pair: PgPair, on_pair: ReplicaApp, record_property: Any
) -> None:
    """A revoke is refused on the replica once replayed, within the measured lag; by primary_user at once."""
    await on_pair.add_user("ada")
    pg_pair.wait_caught_up()
    async with client(on_pair.app) as browser, client(on_pair.app) as thief:
        await browser.post("/login/ada")
        old = browser.cookies["session"]
        pg_pair.pause_replay()
        assert (await browser.post("/revoke")).status_code == 200  # committed on the primary
        assert (await replay(thief, "/me", old)).status_code == 200  # the documented lag: the replica has not replayed
        assert (await replay(thief, "/settings", old)).status_code == 401  # primary_user sees it at once
        pg_pair.resume_replay()
        replay_lag = pg_pair.wait_caught_up()
        refused = await replay(thief, "/me", old)
        assert refused.status_code == 401
        assert "max-age=0" in refused.headers["set-cookie"].lower()

        # Without pausing: how long after the revoke returns is the old cookie refused on the replica?
        browser.cookies.clear()
        await browser.post("/login/ada")
        old = browser.cookies["session"]
        pg_pair.wait_caught_up()
        assert (await replay(thief, "/me", old)).status_code == 200
        assert (await browser.post("/revoke")).status_code == 200
        revoked_at = time.monotonic()
        polls = 0
        while (await replay(thief, "/me", old)).status_code != 401:
            polls += 1
            assert time.monotonic() - revoked_at < POLL_LIMIT, "the revoked cookie was never refused"
        seen_after = time.monotonic() - revoked_at
        streaming_lag = pg_pair.wait_caught_up()
    record_property("replay_lag_after_pause_s", round(replay_lag, 4))
    record_property("refused_after_revoke_s", round(seen_after, 4))
    record_property("accepted_polls_after_revoke", polls)
    logger.info(
        "R2 figures: caught up %.4f s after resuming; old cookie refused %.4f s after the revoke returned "
        "(%d polls still accepted it); lag then %.4f s",
        replay_lag,
        seen_after,
        polls,
        streaming_lag,
    )
    assert seen_after <= max(replay_lag, streaming_lag) + REFUSED_WITHIN_MARGIN


@pytest.mark.case("R3")
async def test_a_stopped_replica_falls_back_to_the_primary(
    pg_pair: PgPair, on_pair: ReplicaApp, caplog: pytest.LogCaptureFixture
) -> None:
    """A stopped replica: checks fall back to the primary (no 5xx, cookie kept, logged); restarted, it serves again
    once REPLICA_RETRY seconds have passed (a failed replica is not tried on every request)."""
    caplog.set_level(logging.WARNING, logger="sealed_sessions")
    await on_pair.add_user("ada")
    pg_pair.wait_caught_up()
    async with client(on_pair.app) as browser:
        await browser.post("/login/ada")
        assert (await browser.get("/me")).status_code == 200
        pg_pair.stop_replica()
        on_pair.forget()
        for _ in range(3):
            response = await browser.get("/me")
            assert response.status_code == 200, response.text
            assert "set-cookie" not in response.headers
        assert on_pair.selects("primary") == 3  # one check each, on the primary
        assert "replica_fallback" in [getattr(r, "reason", None) for r in caplog.records]

        pg_pair.start_replica()
        pg_pair.wait_streaming()
        await on_pair.replica.dispose()  # not needed with pool_pre_ping; keeps the count below exact
        on_pair.forget()
        assert (await browser.get("/me")).status_code == 200  # within REPLICA_RETRY: still the primary
        assert (on_pair.selects("replica"), on_pair.selects("primary")) == (0, 1)
        on_pair.auth.clock.advance(REPLICA_RETRY)  # type: ignore[attr-defined]  # the FakeClock
        on_pair.forget()
        assert (await browser.get("/me")).status_code == 200
        assert (on_pair.selects("replica"), on_pair.sent["primary"]) == (1, [])


@pytest.mark.case("R4")
async def test_a_stopped_primary_keeps_reads_working_and_writes_answer_503(
    pg_pair: PgPair, on_pair: ReplicaApp
) -> None:
    """With the primary stopped, replica checks authenticate, writes answer 503, and after restart nothing was lost."""
    await on_pair.add_user("ada")
    pg_pair.wait_caught_up()
    async with client(on_pair.app) as browser:
        await browser.post("/login/ada")
        before = await on_pair.row("ada")
        pg_pair.stop_primary()
        on_pair.forget()
        for _ in range(3):
            response = await browser.get("/me")
            assert response.status_code == 200, response.text
            assert "set-cookie" not in response.headers
        assert on_pair.sent["primary"] == []
        for write in ("/revoke", "/rename/grace"):  # revoke's primary_user check; rename's own UPDATE
            response = await browser.post(write)
            assert response.status_code == 503, (write, response.text)
            assert response.headers["retry-after"] == "5"
            assert "set-cookie" not in response.headers
        pg_pair.start_primary()
        pg_pair.wait_streaming()
        assert (await browser.get("/me")).status_code == 200
        assert (await browser.get("/settings")).status_code == 200  # on the primary: the session is intact
        assert await on_pair.row("ada") == before  # no token rotated, no name changed


@pytest.mark.case("R5")
async def test_device_login_and_logout_with_a_lagging_replica(pg_pair: PgPair, devices_on_pair: ReplicaApp) -> None:
    """A device logged in during paused replay works (confirmed on the primary); logged out, its copy dies on replay."""
    app = devices_on_pair
    await app.add_user("ada")
    pg_pair.wait_caught_up()
    async with client(app.app) as browser, client(app.app) as thief:
        pg_pair.pause_replay()
        assert (await browser.post("/login/ada")).status_code == 200  # the device row, on the primary only
        app.forget()
        response = await browser.get("/me")
        assert response.status_code == 200 and "set-cookie" not in response.headers
        assert (app.selects("replica"), app.selects("primary")) == (1, 1)

        pg_pair.resume_replay()
        pg_pair.wait_caught_up()
        copy = browser.cookies["session"]
        app.forget()
        assert (await replay(thief, "/me", copy)).status_code == 200
        assert app.sent["primary"] == []  # a hit on the replica

        pg_pair.pause_replay()
        assert (await browser.post("/logout")).status_code == 200  # DELETE of the device row, on the primary
        assert (await replay(thief, "/me", copy)).status_code == 200  # the lag: the replica still has the row
        assert (await replay(thief, "/settings", copy)).status_code == 401
        pg_pair.resume_replay()
        pg_pair.wait_caught_up()
        assert (await replay(thief, "/me", copy)).status_code == 401


@pytest.mark.case("R6")
async def test_hits_on_a_caught_up_replica_send_nothing_to_the_primary(pg_pair: PgPair, on_pair: ReplicaApp) -> None:
    """Fifty authenticated requests on a caught-up replica send the primary no statement at all."""
    await on_pair.add_user("ada")
    async with client(on_pair.app) as browser:
        await browser.post("/login/ada")
        pg_pair.wait_caught_up()
        on_pair.forget()
        for _ in range(50):
            assert (await browser.get("/me")).status_code == 200
    assert on_pair.sent["primary"] == []
    assert on_pair.selects("replica") == 50
