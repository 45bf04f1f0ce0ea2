"""Revocation racing in-flight and concurrent requests (I1, I3)."""

import asyncio

import pytest

from tests.helpers import COOKIE, ClientFactory

from .harness import HarnessFactory, session_of


@pytest.mark.case("I1")
async def test_requests_started_after_the_revoke_commits_are_refused(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A request already past its check finishes; every request started after the revoke commits gets 401."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        in_flight = asyncio.ensure_future(phone.get("/slow"))
        await asyncio.wait_for(h.entered.wait(), 30)  # the phone's request has passed its check
        assert (await laptop.post("/logout-everywhere")).status_code == 200  # committed
        after = await asyncio.gather(*(phone.get("/me") for _ in range(5)))
        assert [r.status_code for r in after] == [401] * 5
        h.gate.set()
        finished = await in_flight
        assert finished.status_code == 200  # documented: a request past its check completes


@pytest.mark.case("I3")
async def test_concurrent_logout_everywhere_and_password_change_on_sqlite(
    make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Racing "log out everywhere" and a password change end with one consistent token, no lock error."""
    h = await make_harness("sqlite")
    pk = await h.create_user("ada")
    original = await h.token(pk)
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        for _ in range(5):
            await laptop.post("/login/ada")
            await phone.post("/login/ada")
            everywhere, password = await asyncio.gather(laptop.post("/logout-everywhere"), phone.post("/password/n3w"))
            assert everywhere.status_code in (200, 401), everywhere.text  # never 500 "database is locked"
            assert password.status_code in (200, 401), password.text
            assert 200 in (everywhere.status_code, password.status_code)
            final = await h.token(pk)
            assert final is not None
            assert final != original
            assert (await laptop.get("/me")).status_code == 401  # log out everywhere ended this device
            phone_token = session_of(phone).get("_auth_token") if COOKIE in phone.cookies else None
            phone_ok = (await phone.get("/me")).status_code == 200
            # The phone survives exactly when its password change committed last and kept it.
            assert phone_ok == (phone_token == final)
            original = final
