"""J3: sustained load on a small pool: no 5xx but fast 503s when saturated, no session crossed, no leak."""

from __future__ import annotations

import asyncio
import collections
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.helpers import COOKIE, KEY_A, ClientFactory

from .faultproxy import FaultProxy
from .sealedapp import build_app, create_users, drop_table

pytestmark = pytest.mark.postgres

CLIENTS = 24
REQUESTS_PER_CLIENT = 15
POOL_TIMEOUT = 0.5


async def _client_run(client: httpx.AsyncClient, uid: int, statuses: collections.Counter[int]) -> None:
    """One user's session: log in, then reads and writes, each bounded in time; checks it stays this user's."""
    for _ in range(20):  # login itself may meet a saturated pool
        response = await asyncio.wait_for(client.post(f"/login/{uid}"), POOL_TIMEOUT + 10)
        statuses[response.status_code] += 1
        if response.status_code == 200:
            break
        assert response.status_code == 503 and "retry-after" in response.headers
    else:
        raise AssertionError(f"user {uid} could not log in")
    cookie = client.cookies.get(COOKIE)
    assert cookie
    for i in range(REQUESTS_PER_CLIENT):
        if i % 5 == 4:
            response = await asyncio.wait_for(client.post(f"/note/u{uid}n{i}"), POOL_TIMEOUT + 10)
        else:
            response = await asyncio.wait_for(client.get("/me"), POOL_TIMEOUT + 10)
        statuses[response.status_code] += 1
        if response.status_code == 503:
            assert "retry-after" in response.headers and "set-cookie" not in response.headers
            assert client.cookies.get(COOKIE) == cookie  # an outage never logs anyone out
            continue
        assert response.status_code == 200, response.text
        assert response.json()["user"] == uid  # never another client's session
        cookie = client.cookies.get(COOKIE)


@pytest.mark.case("J3")
@pytest.mark.parametrize(
    ("pool_size", "delay"),
    [pytest.param(4, 0.0, id="steady"), pytest.param(2, 0.05, id="saturated")],
)
async def test_sustained_load_on_a_small_pool(
    postgres_url: str, table_name: str, client_factory: ClientFactory, pool_size: int, delay: float
) -> None:
    """Concurrent clients on a small pool: only 200 or 503 with Retry-After, no crossed users, the pool drains."""
    url = make_url(postgres_url)
    direct = create_async_engine(url)
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(FaultProxy(url.host or "127.0.0.1", url.port or 5432, delay=delay))
        if delay:
            await proxy.set_mode("slow")  # every round trip costs `delay`: the pool saturates
        engine: AsyncEngine = create_async_engine(
            url.set(host="127.0.0.1", port=proxy.port),
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT if delay else 10,
            connect_args={"timeout": 5, "command_timeout": 5},
        )
        built = build_app(url.render_as_string(hide_password=False), table_name, keys=[KEY_A], engine=engine)
        await create_users(direct, built, CLIENTS)
        try:
            statuses: collections.Counter[int] = collections.Counter()
            clients = [await stack.enter_async_context(client_factory(built.app)) for _ in range(CLIENTS)]
            await asyncio.gather(*(_client_run(c, i + 1, statuses) for i, c in enumerate(clients)))
            assert set(statuses) <= {200, 503}, statuses
            assert statuses[200] >= CLIENTS  # everyone got through at least once
            if not delay:
                assert statuses[503] == 0, statuses
            await proxy.heal()
            for _ in range(50):
                if engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.02)
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            assert (await clients[0].get("/me")).status_code == 200
            print(f"j3 pool={pool_size} delay={delay}: {dict(statuses)}")
        finally:
            await proxy.heal()
            await engine.dispose()
            await drop_table(direct, built)
            await direct.dispose()
