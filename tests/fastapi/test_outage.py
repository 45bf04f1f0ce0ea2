"""Database faults during the check: 503, Retry-After, cookie untouched, never fail open (H1-H7)."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sealed_sessions.sqlalchemy import new_session_token
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, START, ClientFactory, FakeClock

from .harness import POSTGRES_URL, HarnessFactory, build_app, make_user_model, run_websocket, settle_aiosqlite_threads

TOKEN = new_session_token()
LOGGED_IN = seal(KEY_A, {"_auth_uid": 1, "_auth_token": TOKEN, "_auth_at": START}, issued_at=START)
"""A session cookie value of user 1 (a user the outage tests never get to look up)."""


def free_loopback_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def dropping_server() -> AsyncIterator[int]:
    """A loopback server that accepts and at once closes every connection: a crashing database."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def assert_outage_response(response: httpx.Response, secrets: list[str]) -> None:
    """503, Retry-After, generic body, no cookie change, nothing secret or internal in the body."""
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "Service temporarily unavailable"}
    assert "set-cookie" not in response.headers
    body = response.text.lower()
    for needle in ["select", "session_token", "traceback", "127.0.0.1", "sqlite", "postgres", "mysql", *secrets]:
        assert needle.lower() not in body


def assert_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
    secrets: list[str],
    level: int = logging.WARNING,
    reason: str = "database_unavailable",
) -> None:
    """One record on the sealed_sessions logger (a warning for an outage); none anywhere carries the cookie or token."""
    ours = [r for r in caplog.records if r.name == "sealed_sessions" and r.levelno >= logging.WARNING]
    assert len(ours) == 1
    assert ours[0].levelno == level
    assert getattr(ours[0], "reason", None) == reason
    assert ours[0].exc_info is None
    for record in caplog.records:
        text_ = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text_


async def _outage_case(url: str, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine(url, pool_timeout=5)
    _, user = make_user_model("int", "users_unreachable")
    h = build_app(engine, user, FakeClock())
    try:
        caplog.set_level(logging.DEBUG)
        async with client_factory(h.app, cookies={COOKIE: LOGGED_IN}) as client:
            response = await client.get("/me")
            assert_outage_response(response, [TOKEN, LOGGED_IN])
            assert_logged_without_secrets(caplog, [TOKEN, LOGGED_IN])
            optional = await client.get("/maybe")  # an optional route does not treat "unknown" as anonymous
            assert_outage_response(optional, [TOKEN, LOGGED_IN])
            assert client.cookies[COOKIE] == LOGGED_IN  # nobody logged out by the outage
        async with client_factory(h.app) as anonymous:
            assert (await anonymous.get("/me")).status_code == 401  # no session: no database needed
            assert (await anonymous.get("/public")).status_code == 200
    finally:
        await engine.dispose()
        await settle_aiosqlite_threads()


DRIVERS = [
    pytest.param("postgresql+asyncpg://postgres@127.0.0.1:{port}/test", id="postgres"),
    pytest.param("mysql+aiomysql://root@127.0.0.1:{port}/test", id="mariadb"),
]
"""Real drivers' URLs, for a port where no database answers."""


@pytest.mark.case("H1", "H6", "H7")
@pytest.mark.parametrize("scheme", DRIVERS)
async def test_database_refusing_connections_answers_503(
    scheme: str, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A real driver connecting to a loopback port where nothing listens: 503, cookie kept, logged safely."""
    await _outage_case(scheme.format(port=free_loopback_port()), client_factory, caplog)


@pytest.mark.case("H1", "H6", "H7")
@pytest.mark.parametrize("scheme", DRIVERS)
async def test_database_dropping_connections_answers_503(
    scheme: str, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that accepts and hangs up at once (crashing): 503 with the cookie kept."""
    async with dropping_server() as port:
        await _outage_case(scheme.format(port=port), client_factory, caplog)


@pytest.mark.case("H1", "H6", "H7")
async def test_sqlite_file_in_missing_directory_answers_503(
    tmp_path: Path, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A SQLite database whose directory does not exist: 503, cookie kept, logged safely."""
    await _outage_case(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'app.db'}", client_factory, caplog)


@pytest.mark.case("H2", "H6", "H7")
async def test_pool_exhausted_answers_503_within_the_pool_timeout(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With the only pooled connection held elsewhere, the check gives 503 after pool_timeout, no hang."""
    h = await make_harness(db_kind, engine_options={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        async with h.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            async with asyncio.timeout(30):  # a guard against a hang, not a timing assertion
                response = await client.get("/me")
        assert_outage_response(response, [cookie])
        assert_logged_without_secrets(caplog, [cookie])
        assert client.cookies[COOKIE] == cookie
        assert (await client.get("/me")).status_code == 200  # the pool recovers by itself


@pytest.mark.case("H3", "H6")
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="SEALED_TEST_POSTGRES_URL is not set")
async def test_query_timeout_answers_503(
    make_harness: HarnessFactory, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A check that exceeds PostgreSQL's statement_timeout (table locked by another session) gives 503."""
    h = await make_harness(
        "postgres", engine_options={"connect_args": {"server_settings": {"statement_timeout": "300"}}}
    )
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        async with h.engine.connect() as locker:
            await locker.execute(text("SET LOCAL statement_timeout = 0"))
            await locker.execute(text(f"LOCK TABLE {h.User.__tablename__} IN ACCESS EXCLUSIVE MODE"))
            async with asyncio.timeout(30):
                response = await client.get("/me")
            await locker.rollback()
        assert_outage_response(response, [cookie])
        assert client.cookies[COOKIE] == cookie
        assert (await client.get("/me")).status_code == 200


@pytest.mark.case("H5", "H6", "H7")
async def test_any_database_error_fails_closed(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error that is not an outage (the table is gone) still gives 503, never a user."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        table = h.User.__tablename__
        async with h.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        try:
            response = await client.get("/me")
        finally:
            async with h.engine.begin() as conn:
                await conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
        assert_outage_response(response, [cookie, table])
        # Not connection trouble, so an error that says so (it will not heal by itself); SQLite
        # reports a missing table as an OperationalError, which looks like connection trouble.
        if db_kind == "sqlite":
            assert_logged_without_secrets(caplog, [cookie])
        else:
            assert_logged_without_secrets(caplog, [cookie], level=logging.ERROR, reason="database_error")
        assert (await client.get("/me")).status_code == 200


@pytest.mark.case("H1", "H7")
async def test_websocket_outage_closes_with_1013(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A WebSocket handshake during an outage is closed with 1013 (try again later), not accepted."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'app.db'}")
    _, user = make_user_model("int", "users_ws")
    h = build_app(engine, user, FakeClock())
    try:
        messages = await run_websocket(h.app, LOGGED_IN)
    finally:
        await engine.dispose()
        await settle_aiosqlite_threads()
    assert messages[0]["type"] == "websocket.close"
    assert messages[0]["code"] == 1013
    assert_logged_without_secrets(caplog, [LOGGED_IN, TOKEN])
