"""One statement and as few round trips as the database allows per authenticated request (H9, H10)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from sealed_sessions.sqlalchemy import new_session_token
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, START, ClientFactory

from .harness import MARIADB_URL, POSTGRES_URL, HarnessFactory
from .wire import WireCounter


@pytest.mark.case("H9")
async def test_one_select_for_an_authenticated_request(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """An authenticated request sends exactly one SELECT, checking id and token in one WHERE."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/me")).status_code == 200
        assert len(h.statements) == 1, h.statements
        sql = " ".join(h.statements[0].split()).lower()
        assert sql.startswith("select ")
        where = sql.split(" where ", 1)[1]
        assert ".id = " in where
        assert ".session_token = " in where
        assert ".is_active" in where


@pytest.mark.case("H9")
async def test_no_statement_and_no_connection_for_anonymous_requests(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Anonymous requests to protected, optional and public routes touch no connection at all."""
    h = await make_harness(db_kind)
    checkouts: list[object] = []

    @event.listens_for(h.engine.sync_engine.pool, "checkout")
    def count(*args: Any) -> None:
        checkouts.append(args)

    async with client_factory(h.app) as client:
        h.statements.clear()
        assert (await client.get("/me")).status_code == 401
        assert (await client.get("/maybe")).status_code == 200
        assert (await client.get("/public")).status_code == 200
        assert h.statements == []
        assert checkouts == []


@pytest.mark.case("H9")
async def test_malformed_session_is_refused_without_a_query(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A session whose user id or token has the wrong type or an empty token gets 401 with no SQL."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    bad_sessions: list[dict[str, Any]] = [
        {"_auth_uid": 1, "_auth_token": ""},
        {"_auth_uid": 1, "_auth_token": 12345},
        {"_auth_uid": 1},
        {"_auth_uid": "1", "_auth_token": "x" * 43},
        {"_auth_uid": True, "_auth_token": "x" * 43},
        {"_auth_uid": 1, "_auth_token": "x" * 65},
        {"_auth_uid": [1], "_auth_token": "x" * 43},
    ]
    for data in bad_sessions:
        cookie = seal(KEY_A, data, issued_at=START)
        async with client_factory(h.app, cookies={COOKIE: cookie}) as client:
            h.statements.clear()
            response = await client.get("/me")
            assert response.status_code == 401, data
            assert "max-age=0" in response.headers["set-cookie"].lower(), data
            assert h.statements == [], data


@pytest.mark.case("H9")
async def test_endpoint_shares_the_request_session(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """An endpoint that also uses the database adds only its own statement to the check's one."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    await h.create_user("grace")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        response = await client.get("/me/count")
        assert response.json() == {"name": "ada", "users": 2, "same_session": True}
        assert len(h.statements) == 2, h.statements
        assert "session_token" in h.statements[0]
        assert "count(" in h.statements[1].lower()


def _host_port(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    assert parsed.host is not None
    return parsed.host, parsed.port or (5432 if parsed.get_backend_name() == "postgresql" else 3306)


@pytest.fixture
async def pg_wire() -> AsyncIterator[tuple[WireCounter, str]]:
    """A round-trip counter in front of the shared PostgreSQL, and the URL that goes through it."""
    if not POSTGRES_URL:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    host, port = _host_port(POSTGRES_URL)
    async with WireCounter("postgres", host, port) as wire:
        yield wire, make_url(POSTGRES_URL).set(host="127.0.0.1", port=wire.port).render_as_string(False)


@pytest.fixture
async def mariadb_wire() -> AsyncIterator[tuple[WireCounter, str]]:
    """A round-trip counter in front of the shared MariaDB, and the URL that goes through it."""
    if not MARIADB_URL:
        pytest.skip("SEALED_TEST_MARIADB_URL is not set")
    host, port = _host_port(MARIADB_URL)
    async with WireCounter("mysql", host, port) as wire:
        yield wire, make_url(MARIADB_URL).set(host="127.0.0.1", port=wire.port).render_as_string(False)


async def _trips_per_request(
    wire: WireCounter,
    url: str,
    kind: str,
    make_harness: HarnessFactory,
    client_factory: ClientFactory,
    path: str,
    **auth: Any,
) -> list[str]:
    """Round trips of one warm authenticated request (connection open, statement already prepared)."""
    h = await make_harness(kind, url=url, engine_options={"pool_size": 1, "max_overflow": 0}, **auth)
    await h.create_user("ada")
    await h.create_user("grace")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        assert (await client.get(path)).status_code == 200  # warm: connect, prepare, cache
        wire.reset()
        assert (await client.get(path)).status_code == 200
        trips = [f"{t.kind}: {' '.join(t.sql.split())[:60]}" for t in wire.trips]
    async with client_factory(h.app) as anonymous:
        wire.reset()
        assert (await anonymous.get("/public")).status_code == 200
        assert (await anonymous.get("/me")).status_code == 401
        assert wire.trips == []  # anonymous: nothing on the wire
    return trips


@pytest.mark.case("H9")
@pytest.mark.postgres
async def test_postgres_authenticated_request_is_one_round_trip(
    pg_wire: tuple[WireCounter, str], make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """On asyncpg the check runs outside a transaction: one round trip, no BEGIN, no ROLLBACK."""
    wire, url = pg_wire
    trips = await _trips_per_request(wire, url, "postgres", make_harness, client_factory, "/me")
    assert len(trips) == 1, trips
    assert trips[0].startswith("sync: SELECT"), trips


@pytest.mark.case("H9")
@pytest.mark.postgres
async def test_postgres_inside_a_transaction_costs_begin_and_commit(
    pg_wire: tuple[WireCounter, str], make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """With the autocommit check turned off, asyncpg adds BEGIN and COMMIT: three round trips."""
    wire, url = pg_wire
    trips = await _trips_per_request(wire, url, "postgres", make_harness, client_factory, "/me", autocommit_check=False)
    assert [t.split(":")[0] for t in trips] == ["query", "sync", "query"], trips
    assert trips[0].startswith("query: BEGIN")
    assert trips[2].startswith("query: COMMIT")


@pytest.mark.case("H9")
@pytest.mark.postgres
async def test_postgres_endpoint_transaction_still_works(
    pg_wire: tuple[WireCounter, str], make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """After the autocommit check, the endpoint's own statements run in a normal transaction."""
    wire, url = pg_wire
    trips = await _trips_per_request(wire, url, "postgres", make_harness, client_factory, "/me/count")
    kinds = [t.split(":")[0] for t in trips]
    assert kinds == ["sync", "query", "sync", "query"], trips
    assert "session_token" in trips[0] or trips[0].startswith("sync: SELECT")
    assert trips[1].startswith("query: BEGIN")
    assert "count(" in trips[2].lower()
    assert trips[3].startswith("query: ROLLBACK")


@pytest.mark.case("H9")
@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        pytest.param("rollback", ["SELECT", "COMMIT", "ROLLBACK"], id="pool_default"),
        pytest.param(None, ["SELECT", "COMMIT"], id="pool_reset_on_return_none"),
    ],
)
async def test_mariadb_authenticated_request_round_trips(
    reset: str | None,
    expected: list[str],
    mariadb_wire: tuple[WireCounter, str],
    make_harness: HarnessFactory,
    client_factory: ClientFactory,
) -> None:
    """On MariaDB the check is one COM_QUERY plus the COMMIT that ends its unit of work and read view.

    SQLAlchemy's pool adds a second, redundant ROLLBACK when the ORM session returns the connection;
    ``pool_reset_on_return=None`` removes it (the session has always ended the transaction by then).
    """
    wire, url = mariadb_wire
    h = await make_harness("mariadb", url=url, engine_options={"pool_size": 1, "pool_reset_on_return": reset})
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        await client.get("/me")
        wire.reset()
        assert (await client.get("/me")).status_code == 200
    assert [t.kind for t in wire.trips] == ["command 0x03"] * len(expected)
    assert [t.sql.split()[0] for t in wire.trips] == expected, wire.trips


async def _restart_case(
    backend: str, wire: WireCounter, url: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    h = await make_harness(backend, url=url, engine_options={"pool_size": 1, "max_overflow": 0})
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        assert (await client.get("/me")).status_code == 200
        wire.sever()
        statuses = [(await client.get("/me")).status_code for _ in range(3)]
        assert statuses in ([200, 200, 200], [503, 200, 200]), statuses
        assert client.cookies[COOKIE] == cookie


@pytest.mark.case("H4")
@pytest.mark.postgres
async def test_postgres_restart_recovers_with_at_most_one_503(
    pg_wire: tuple[WireCounter, str], make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """After every pooled PostgreSQL connection is cut (a restart), at most one 503, then success."""
    await _restart_case("postgres", *pg_wire, make_harness, client_factory)


@pytest.mark.case("H4")
@pytest.mark.mariadb
async def test_mariadb_restart_recovers_with_at_most_one_503(
    mariadb_wire: tuple[WireCounter, str], make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """After every pooled MariaDB connection is cut (a restart), at most one 503, then success."""
    await _restart_case("mariadb", *mariadb_wire, make_harness, client_factory)


async def test_overridden_statement_is_the_one_run(
    make_harness: HarnessFactory, client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SessionAuth whose statement() is overridden (as the by-id benchmark does) runs that statement."""
    h = await make_harness("sqlite")
    pk = await h.create_user("ada")
    monkeypatch.setattr(h.auth, "statement", lambda uid, token: select(h.User).where(h.User.id == uid))
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        await h.set_columns(pk, session_token=new_session_token())
        assert (await client.get("/me")).status_code == 200  # by id only: the stale token is not compared
