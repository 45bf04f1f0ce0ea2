"""Login, logout and revocation through ``SessionAuth`` on every database (catalogue rows G1-G9, H10)."""

from __future__ import annotations

import base64
import string

import pytest
from starlette.requests import HTTPConnection

from sealed_sessions.fastapi import UnusableUser
from sealed_sessions.sqlalchemy import new_session_token
from sealed_sessions.testing import seal, unseal
from tests.helpers import COOKIE, KEY_A, START, ClientFactory, cookie

from .harness import HarnessFactory, session_of


@pytest.mark.case("G3")
async def test_revoke_from_one_device_refuses_the_other(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Log out everywhere from one device: the other device's next request gets 401."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        assert (await laptop.post("/login/ada")).status_code == 200
        assert (await phone.post("/login/ada")).status_code == 200
        assert (await phone.get("/me")).status_code == 200
        assert (await laptop.post("/logout-everywhere")).status_code == 200
        refused = await phone.get("/me")
        assert refused.status_code == 401
        assert (await laptop.get("/me")).status_code == 401  # without keep=, this device ends too


@pytest.mark.case("G5")
async def test_revoke_keeping_this_device_refuses_the_others(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """``revoke(keep=request)`` reseals the current device with the new token; the others die."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        old = await h.token(pk)
        response = await laptop.post("/logout-others")
        assert response.status_code == 200
        new = await h.token(pk)
        assert new != old
        assert session_of(laptop)["_auth_token"] == new
        assert (await laptop.get("/me")).status_code == 200
        assert (await phone.get("/me")).status_code == 401


@pytest.mark.case("G4")
async def test_password_change_rotates_and_keeps_this_device(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A password change commits the new password and a new token together and keeps this device."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        await laptop.post("/login/ada")
        await phone.post("/login/ada")
        old = await h.token(pk)
        assert (await laptop.post("/password/s3cret")).status_code == 200
        async with h.maker() as db:
            user = await db.get(h.User, pk)
            assert user is not None
            assert user.password == "s3cret"
            assert user.session_token != old
        assert (await laptop.get("/me")).status_code == 200
        assert (await phone.get("/me")).status_code == 401


@pytest.mark.case("G6")
@pytest.mark.parametrize("how", ["deleted", "deactivated"])
async def test_deleted_or_inactive_user_is_refused(
    how: str, db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A deleted or deactivated user's valid cookie gets 401 and a deletion cookie."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        assert (await client.get("/me")).status_code == 200
        if how == "deleted":
            await h.delete(pk)
        else:
            await h.set_columns(pk, is_active=False)
        response = await client.get("/me")
        assert response.status_code == 401
        assert "max-age=0" in response.headers["set-cookie"].lower()


@pytest.mark.case("G7")
@pytest.mark.parametrize("value", [pytest.param("", id="empty"), pytest.param(None, id="null")])
async def test_null_or_empty_token_in_database_is_refused(
    value: str | None, db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A token set to '' or NULL in the database (a legacy nullable column) refuses the session."""
    h = await make_harness(db_kind, nullable_token=True)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        assert (await client.get("/me")).status_code == 200
        await h.set_columns(pk, session_token=value)
        assert await h.token(pk) == value
        response = await client.get("/me")
        assert response.status_code == 401
        assert "max-age=0" in response.headers["set-cookie"].lower()


@pytest.mark.case("G8")
def test_fresh_tokens_are_random_and_long() -> None:
    """New tokens are distinct base64url strings of 43 characters (256 bits), never a counter."""
    tokens = [new_session_token() for _ in range(1000)]
    assert len(set(tokens)) == 1000
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(len(t) == 43 and set(t) <= alphabet for t in tokens)
    # 43 base64url characters decode to the 32 bytes (256 bits) drawn from the CSPRNG.
    assert all(len(base64.urlsafe_b64decode(t + "=")) == 32 for t in tokens)


@pytest.mark.case("G8")
async def test_rotation_gives_a_new_random_token(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Each rotation stores a new 43-character token that differs from every earlier one."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    seen = {await h.token(pk)}
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        for _ in range(5):
            assert (await client.post("/logout-others")).status_code == 200
            token = await h.token(pk)
            assert token is not None
            assert len(token) == 43
            assert token not in seen
            seen.add(token)


@pytest.mark.case("G1")
async def test_login_starts_a_new_session_and_drops_pre_login_data(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Login resets the session: pre-login keys are gone and the lifetime starts at login time."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/cart")
        before = unseal(KEY_A, client.cookies[COOKIE])
        assert before.data["is_admin"] is True
        h.clock.advance(3600)
        await client.post("/login/ada")
        after = unseal(KEY_A, client.cookies[COOKIE])
        assert "is_admin" not in after.data
        assert "cart" not in after.data
        assert after.issued_at == before.issued_at + 3600
        assert after.data["_auth_at"] == after.issued_at
        assert (await client.get("/me")).json()["session"] == ["_auth_at", "_auth_token", "_auth_uid"]


@pytest.mark.case("G2", "G9")
async def test_logout_without_revoke_leaves_old_copies_valid(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A copy of the cookie kept from before a plain logout still works (documented limit)."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        stolen = client.cookies[COOKIE]
        response = await client.post("/logout")
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert (await client.get("/me")).status_code == 401
    async with client_factory(h.app, cookies={COOKIE: stolen}) as attacker:
        assert (await attacker.get("/me")).status_code == 200


@pytest.mark.case("G2")
async def test_logout_with_revoke_refuses_old_copies(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Where the app revokes on logout, a copy of the pre-logout cookie is refused."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        stolen = client.cookies[COOKIE]
        async with client_factory(h.app, cookies={COOKIE: stolen}) as attacker:
            assert (await attacker.get("/me")).status_code == 200  # the copy works until the logout
            assert (await client.post("/logout-revoke")).status_code == 200
            assert (await attacker.get("/me")).status_code == 401


async def test_token_mismatch_clears_the_cookie(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A session whose token no longer matches gets 401, WWW-Authenticate and a deletion cookie."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        await h.set_columns(pk, session_token=new_session_token())
        response = await client.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == f'Cookie name="{COOKIE}"'
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert COOKIE not in client.cookies
        # Optional routes answer None and still clear a dead session.
        await client.post("/login/ada")
        await h.set_columns(pk, session_token=new_session_token())
        maybe = await client.get("/maybe")
        assert maybe.status_code == 200
        assert maybe.json() == {"name": None}
        assert "max-age=0" in maybe.headers["set-cookie"].lower()


async def test_optional_user_gives_the_user_or_none(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """``optional_user`` gives None to an anonymous request and the user to a logged-in one."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        anonymous = await client.get("/maybe")
        assert anonymous.json() == {"name": None}
        assert "set-cookie" not in anonymous.headers
        await client.post("/login/ada")
        assert (await client.get("/maybe")).json() == {"name": "ada"}


@pytest.mark.parametrize("pk", ["int", "uuid", "str"])
async def test_primary_key_types(
    pk: str, db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Integer, UUID and string primary keys log in, authenticate and revoke alike."""
    h = await make_harness(db_kind, pk=pk)
    user_id = await h.create_user("ada")
    async with client_factory(h.app) as laptop, client_factory(h.app) as phone:
        login = await laptop.post("/login/ada")
        assert login.json() == {"id": str(user_id)}
        stored = session_of(laptop)["_auth_uid"]
        assert stored == (user_id if pk == "int" else str(user_id))
        await phone.post("/login/ada")
        assert (await laptop.get("/me")).json()["id"] == str(user_id)
        await laptop.post("/logout-others")
        assert (await laptop.get("/me")).status_code == 200
        assert (await phone.get("/me")).status_code == 401


async def test_no_session_gives_401_with_challenge(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """An anonymous request gets 401 with WWW-Authenticate, no Set-Cookie, and Vary: Cookie."""
    h = await make_harness(db_kind)
    async with client_factory(h.app) as client:
        response = await client.get("/me")
        assert response.status_code == 401
        assert response.json() == {"detail": "Not authenticated"}
        assert response.headers["www-authenticate"] == f'Cookie name="{COOKIE}"'
        assert "set-cookie" not in response.headers
        assert "cookie" in response.headers["vary"].lower()


async def test_endpoint_changes_to_the_loaded_user_commit(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """The user from the check belongs to the request's session: the endpoint can change and commit it."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        assert (await client.post("/me/rename/grace")).json() == {"name": "grace"}
        async with h.maker() as db:
            user = await db.get(h.User, pk)
            assert user is not None
            assert user.name == "grace"
        assert (await client.get("/me")).json()["name"] == "grace"


@pytest.mark.case("H11")
@pytest.mark.parametrize("forged_id", ["a\x00b", "\x00", "id\r\nX-Injected: 1", "\x9bcsi"])
async def test_forged_text_id_with_controls_is_a_401_never_a_503(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory, forged_id: str
) -> None:
    """A session forged with the key naming a text user id with NUL or controls: 401, cookie deleted, no query."""
    h = await make_harness(db_kind, pk="str")
    pk = await h.create_user("ada")
    token = await h.token(pk)
    forged = seal(KEY_A, {h.auth.user_id_key: forged_id, h.auth.token_key: token}, issued_at=START)
    h.statements.clear()
    async with client_factory(h.app) as client:
        response = await client.get("/me", headers={"cookie": cookie(forged)})
    assert response.status_code == 401, response.text
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert h.statements == []  # refused before any query


@pytest.mark.case("H10")
async def test_token_differing_only_in_letter_case_is_refused_on_every_database(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """The token column compares byte for byte, on MariaDB too (a binary collation): a case-swapped token is a 401."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    token = await h.token(pk)
    assert token is not None and token.swapcase() != token
    swapped = seal(KEY_A, {h.auth.user_id_key: pk, h.auth.token_key: token.swapcase()}, issued_at=START)
    genuine = seal(KEY_A, {h.auth.user_id_key: pk, h.auth.token_key: token}, issued_at=START)
    async with client_factory(h.app) as client:
        assert (await client.get("/me", headers={"cookie": cookie(genuine)})).status_code == 200
        assert (await client.get("/me", headers={"cookie": cookie(swapped)})).status_code == 401


@pytest.mark.case("G5")
async def test_revoke_keeping_a_stale_session_refuses_to_revive_it(db_kind: str, make_harness: HarnessFactory) -> None:
    """revoke(keep=request) with a session holding an old token raises UnusableUser and rotates nothing."""
    h = await make_harness(db_kind)
    pk = await h.create_user("ada")
    async with h.maker() as db:
        user = await db.get(h.User, pk)
        assert user is not None
        stale = HTTPConnection({"type": "http", "session": {h.auth.user_id_key: pk, h.auth.token_key: "old-token"}})
        with pytest.raises(UnusableUser, match="current token"):
            await h.auth.revoke(db, user, keep=stale)
    assert await h.token(pk) == user.session_token
