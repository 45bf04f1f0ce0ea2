"""G2 and G9 on the full app (SessionMiddleware + SessionAuth on SQLite): the documented limits of replay."""

# No ``from __future__ import annotations``: FastAPI must resolve the route signature, which names
# a fixture-local ``auth``, at runtime.

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tests.helpers import COOKIE, KEY_A, ClientFactory

from .sealedapp import TestApp, build_app, create_users


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[TestApp]:
    test_app = build_app(f"sqlite+aiosqlite:///{tmp_path}/g.db", "g_users", keys=[KEY_A])
    auth = test_app.auth

    @test_app.app.post("/logout-everywhere")
    async def logout_everywhere(
        request: Request,
        user: Annotated[Any, Depends(auth.current_user)],
        db: Annotated[AsyncSession, Depends(auth.get_db)],
    ) -> dict[str, bool]:
        await auth.revoke(db, user)  # end every copy of this session...
        auth.logout(request)  # ...and delete this browser's cookie
        return {"ok": True}

    await create_users(test_app.engine, test_app, 2)
    yield test_app
    await test_app.engine.dispose()


async def _login(client: httpx.AsyncClient, uid: int) -> str:
    assert (await client.post(f"/login/{uid}")).status_code == 200
    cookie = client.cookies.get(COOKIE)
    assert cookie
    return cookie


async def _me(client: httpx.AsyncClient, cookie: str) -> httpx.Response:
    client.cookies.clear()  # send exactly this cookie, as a replaying attacker would
    return await client.get("/me", headers={"cookie": f"{COOKIE}={cookie}"})


@pytest.mark.case("G2")
async def test_cookie_copied_before_a_plain_logout_still_opens(built: TestApp, client_factory: ClientFactory) -> None:
    """A copy of the cookie taken before a plain logout still opens until it expires (documented in SECURITY.md)."""
    async with client_factory(built.app) as client:
        cookie = await _login(client, 1)
        response = await client.post("/logout")
        assert response.status_code == 200 and "Max-Age=0" in response.headers["set-cookie"]
        assert client.cookies.get(COOKIE) is None
        assert (await _me(client, cookie)).status_code == 200


@pytest.mark.case("G2")
async def test_cookie_copied_before_a_revoking_logout_is_refused(built: TestApp, client_factory: ClientFactory) -> None:
    """Where the app revokes at logout, the pre-logout cookie is refused (401) and deleted at its next use."""
    async with client_factory(built.app) as client:
        cookie = await _login(client, 1)
        assert (await client.post("/logout-everywhere")).status_code == 200
        replay = await _me(client, cookie)
        assert replay.status_code == 401
        assert "Max-Age=0" in replay.headers["set-cookie"]


@pytest.mark.case("G9")
async def test_older_valid_cookie_replayed_is_accepted_and_rolls_data_back(
    built: TestApp, client_factory: ClientFactory
) -> None:
    """An older, still valid cookie of the same user is accepted and rolls its data back (a documented limit)."""
    async with client_factory(built.app) as client:
        await _login(client, 2)
        assert (await client.post("/note/first")).status_code == 200
        older = client.cookies.get(COOKIE)
        assert older
        assert (await client.post("/note/second")).status_code == 200
        response = await _me(client, older)
        assert response.status_code == 200
        assert response.json() == {"user": 2, "name": "user2", "note": "first"}
