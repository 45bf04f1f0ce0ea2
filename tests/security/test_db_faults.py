"""H1-H4 (and H6, H7): database faults injected by a TCP proxy between the app and PostgreSQL.

Every fault must give a 503 with ``Retry-After`` within a bounded time, leave the session cookie
untouched (nobody is logged out by an outage), never authenticate anyone, and recover by itself
once the proxy heals; afterwards no pooled connection is left checked out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.helpers import COOKIE, KEY_A, ClientFactory

from .faultproxy import FaultProxy, Mode
from .sealedapp import TestApp, build_app, create_users, drop_table

pytestmark = pytest.mark.postgres

BOUND = 8.0
"""No request may take longer than this, whatever the fault (pool timeout 1 s, query timeout 1 s)."""


@dataclass
class Rig:
    proxy: FaultProxy
    built: TestApp
    client: httpx.AsyncClient
    engine: AsyncEngine

    async def get(self, path: str) -> httpx.Response:
        return await asyncio.wait_for(self.client.get(path), BOUND)

    async def post(self, path: str) -> httpx.Response:
        return await asyncio.wait_for(self.client.post(path), BOUND)


@pytest.fixture
async def rig(postgres_url: str, table_name: str, client_factory: ClientFactory) -> AsyncIterator[Rig]:
    url = make_url(postgres_url)
    direct = create_async_engine(url)
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(FaultProxy(url.host or "127.0.0.1", url.port or 5432, delay=2.0))
        engine = create_async_engine(
            url.set(host="127.0.0.1", port=proxy.port),
            pool_size=2,
            max_overflow=0,
            pool_timeout=1,
            connect_args={"timeout": 2, "command_timeout": 1},
        )
        built = build_app(url.render_as_string(hide_password=False), table_name, keys=[KEY_A], engine=engine)
        await create_users(direct, built, 3)
        try:
            client = await stack.enter_async_context(client_factory(built.app))
            yield Rig(proxy, built, client, engine)
        finally:
            await proxy.heal()
            await engine.dispose()
            await drop_table(direct, built)
            await direct.dispose()


def _cookie(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(COOKIE)


async def _logged_in(rig: Rig, uid: int = 1) -> str:
    response = await rig.post(f"/login/{uid}")
    assert response.status_code == 200, response.text
    me = await rig.get("/me")
    assert me.status_code == 200 and me.json()["user"] == uid
    cookie = _cookie(rig.client)
    assert cookie
    return cookie


def _assert_outage(response: httpx.Response, cookie: str, client: httpx.AsyncClient) -> None:
    """503, Retry-After, generic body, no Set-Cookie, the browser's cookie unchanged."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 0
    assert "set-cookie" not in response.headers
    assert _cookie(client) == cookie
    body = response.text.lower()
    for leak in ("select", "postgres", "127.0.0.1", "asyncpg", "traceback", cookie.lower()):
        assert leak not in body


async def _recovers(rig: Rig, cookie: str, *, allowed_503: int = 1, attempts: int = 6) -> int:
    """Requests after healing: at most ``allowed_503`` 503s, then 200 with the same user; returns the 503 count."""
    failures = 0
    for _ in range(attempts):
        response = await rig.get("/me")
        if response.status_code == 200:
            assert response.json()["user"] == 1
            assert _cookie(rig.client) == cookie
            return failures
        _assert_outage(response, cookie, rig.client)
        failures += 1
        assert failures <= allowed_503, f"{failures} 503s after the database came back"
    raise AssertionError("never recovered")


async def _no_leak(rig: Rig) -> None:
    for _ in range(50):  # connections return to the pool when the response's dependencies exit
        if rig.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{rig.engine.pool.checkedout()} connection(s) still checked out")  # type: ignore[attr-defined]


@pytest.mark.case("H5", "H6", "H7")
@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("refuse", id="refused", marks=pytest.mark.case("H1")),
        pytest.param("cut", id="cut-mid-query"),
        pytest.param("stall", id="stalled", marks=pytest.mark.case("H3")),
        pytest.param("slow", id="slow-past-timeout", marks=pytest.mark.case("H3")),
    ],
)
async def test_database_fault_gives_a_generic_503_keeps_the_cookie_and_recovers(
    rig: Rig, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused, cut, stalled or slow database gives a fast generic 503 that keeps the cookie, and heals."""
    caplog.set_level(logging.INFO)
    cookie = await _logged_in(rig)
    await rig.proxy.set_mode(mode)
    for _ in range(3):  # the pooled connection and fresh connection attempts both fail
        _assert_outage(await rig.get("/me"), cookie, rig.client)
    assert (await rig.get("/ping")).status_code == 200  # routes without the database still work
    await rig.proxy.heal()
    await _recovers(rig, cookie)
    await _no_leak(rig)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "database unavailable" in logged
    assert cookie not in logged and KEY_A not in logged and "SELECT" not in logged


@pytest.mark.case("H2")
async def test_exhausted_pool_gives_503_within_the_pool_timeout(rig: Rig) -> None:
    """With every pooled connection held, an authenticated request gets 503 after the pool timeout, not a hang."""
    cookie = await _logged_in(rig)
    held = [await rig.engine.connect() for _ in range(2)]
    try:
        _assert_outage(await rig.get("/me"), cookie, rig.client)
    finally:
        for conn in held:
            await conn.close()
    assert (await rig.get("/me")).status_code == 200
    await _no_leak(rig)


@pytest.mark.case("H2")
async def test_pool_exhausted_by_concurrent_requests_gives_503s_then_recovers(rig: Rig) -> None:
    """Concurrent requests on a stalled database exhaust the pool: all end as 503 in bounded time, then recover."""
    cookie = await _logged_in(rig)
    await rig.proxy.set_mode("stall")
    responses = await asyncio.gather(*(rig.get("/me") for _ in range(8)))
    for response in responses:
        _assert_outage(response, cookie, rig.client)
    await rig.proxy.heal()
    await _recovers(rig, cookie)
    await _no_leak(rig)


@pytest.mark.case("H4")
async def test_database_restart_costs_at_most_one_503(rig: Rig) -> None:
    """After every pooled connection dies (a restart), at most one request gets 503 and the rest succeed."""
    cookie = await _logged_in(rig)
    # Fill the pool with two connections, so both are stale after the restart.
    held = [await rig.engine.connect() for _ in range(2)]
    for conn in held:
        await conn.close()
    assert rig.proxy.live == 2
    rig.proxy.cut_all()
    failures = await _recovers(rig, cookie, allowed_503=1)
    assert failures <= 1
    for _ in range(5):
        assert (await rig.get("/me")).status_code == 200
    await _no_leak(rig)
