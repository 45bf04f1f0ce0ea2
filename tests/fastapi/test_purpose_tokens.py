"""Purpose-bound tokens: issue, redeem in one statement, and every way a token is refused (P1-P12)."""

import base64
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ForeignKey, LargeBinary, String, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, make_transient_to_detached, mapped_column, relationship

from sealed_sessions import ConfigurationError, TokenRefusal, TokenRefused
from sealed_sessions._events import AuthEvent, EventKind
from sealed_sessions.fastapi import DatabaseUnavailable, SessionAuth, UnusableUser
from sealed_sessions.sqlalchemy import SessionTokenMixin
from tests.helpers import COOKIE, KEY_A, KEY_B, ClientFactory, FakeClock, unb64

from .harness import Harness, HarnessFactory

RESET = "password_reset"
VERIFY = "verify_email"
HOUR = 3600


async def issue(h: Harness, pk: Any, purpose: str = RESET, *, expires_in: int = HOUR, bound_to: Any = None) -> str:
    """A token for the user ``pk``, bound to its password unless told otherwise."""
    async with h.maker() as db:
        user = await db.get(h.User, pk)
        return h.auth.issue_token(
            user, purpose, expires_in=expires_in, bound_to=(h.User.password,) if bound_to is None else bound_to
        )


async def redeem(
    h: Harness, token: str, purpose: str = RESET, *, bound_to: Any = None, auth: SessionAuth[Any] | None = None
) -> Any:
    """Redeem on a fresh ``AsyncSession``, recording only the redemption's statements; the user."""
    async with h.maker() as db:
        h.statements.clear()
        bound = (h.User.password,) if bound_to is None else bound_to
        return await (auth or h.auth).redeem_token(db, token, purpose, bound_to=bound)


async def refused(h: Harness, token: Any, purpose: str = RESET, **options: Any) -> TokenRefusal:
    """The reason ``token`` is refused for (it must be)."""
    with pytest.raises(TokenRefused) as caught:
        await redeem(h, token, purpose, **options)
    return caught.value.reason


@pytest.fixture
async def ready(db_kind: str, make_harness: HarnessFactory) -> tuple[Harness, Any]:
    """A harness whose SessionAuth has the middleware's key, and its user ``ada``."""
    h = await make_harness(db_kind, secret_key=KEY_A)
    return h, await h.create_user("ada")


# -- the happy path: one statement --------------------------------------------------------------


@pytest.mark.case("P9")
async def test_a_token_redeems_to_its_user_in_one_select(ready: tuple[Harness, Any]) -> None:
    """A fresh token redeems to its user with exactly one SELECT by primary key and active flag."""
    h, pk = ready
    user = await redeem(h, await issue(h, pk))
    assert user.id == pk
    assert user.name == "ada"
    assert len(h.statements) == 1, h.statements
    sql = " ".join(h.statements[0].split()).lower()
    assert sql.startswith("select ")
    where = sql.split(" where ", 1)[1]
    assert ".id = " in where
    assert ".is_active" in where
    assert "session_token" not in where


@pytest.mark.case("P9")
@pytest.mark.parametrize("pk", ["uuid", "str"])
async def test_uuid_and_text_primary_keys_redeem(db_kind: str, make_harness: HarnessFactory, pk: str) -> None:
    """A user with a UUID or text primary key gets a token that redeems to that user, in one statement."""
    h = await make_harness(db_kind, pk, secret_key=KEY_A)
    user_id = await h.create_user("ada")
    token = await issue(h, user_id)
    assert len(token) < 200
    assert (await redeem(h, token)).id == user_id
    assert len(h.statements) == 1


@pytest.mark.case("P5")
async def test_a_key_still_in_the_ring_redeems_after_rotation(ready: tuple[Harness, Any]) -> None:
    """A token sealed under the old key still redeems once a new key is first in the ring (rotation)."""
    h, pk = ready
    token = await issue(h, pk)
    rotated: SessionAuth[Any] = SessionAuth(h.User, h.auth.get_db, clock=h.clock, secret_key=[KEY_B, KEY_A])
    assert (await redeem(h, token, auth=rotated)).id == pk


async def test_redeeming_emits_an_event_with_the_purpose(ready: tuple[Harness, Any]) -> None:
    """A redemption emits one token_redeemed event naming the user and the purpose, and no token."""
    h, pk = ready
    events: list[AuthEvent] = []
    h.auth.events.on(EventKind.TOKEN_REDEEMED, events.append)
    token = await issue(h, pk)
    await redeem(h, token)
    assert events == [AuthEvent(EventKind.TOKEN_REDEEMED, at=h.clock.now, user_id=str(pk), purpose=RESET)]


# -- refusals (the catalogue's P rows) ------------------------------------------------------------


@pytest.mark.case("P1")
async def test_a_forged_token_is_refused_without_a_query(ready: tuple[Harness, Any]) -> None:
    """Any character of a token changed: refused as forged or malformed, before any statement."""
    h, pk = ready
    token = await issue(h, pk)
    for position in range(0, len(token), 3):
        swapped = "A" if token[position] != "A" else "B"
        changed = token[:position] + swapped + token[position + 1 :]
        assert await refused(h, changed) in (TokenRefusal.FORGED, TokenRefusal.MALFORMED)
        assert h.statements == []
    for garbage in ["", "not a token", "%00", "é" * 40, 12345, None, "A" * 5000]:
        assert await refused(h, garbage) == TokenRefusal.MALFORMED
    assert h.statements == []


@pytest.mark.case("P2")
async def test_an_expired_token_is_refused_without_a_query(ready: tuple[Harness, Any]) -> None:
    """A token redeems until one second before ``expires_in`` has passed, and is expired from then on."""
    h, pk = ready
    token = await issue(h, pk, expires_in=900)
    h.clock.advance(899)
    assert (await redeem(h, token)).id == pk
    h.clock.advance(1)
    assert await refused(h, token) == TokenRefusal.EXPIRED
    assert h.statements == []
    h.clock.advance(-900 - 3600)  # issued "in the future" by a server whose clock ran an hour fast
    assert await refused(h, token) == TokenRefusal.EXPIRED


@pytest.mark.case("P3")
async def test_a_token_of_another_purpose_or_application_is_refused(ready: tuple[Harness, Any]) -> None:
    """A reset token does not verify an e-mail (nor the reverse), nor redeem in another ``context``."""
    h, pk = ready
    reset = await issue(h, pk, RESET)
    verify = await issue(h, pk, VERIFY)
    assert await refused(h, reset, VERIFY) == TokenRefusal.FORGED
    assert await refused(h, verify, RESET) == TokenRefusal.FORGED
    other_app: SessionAuth[Any] = SessionAuth(h.User, h.auth.get_db, clock=h.clock, secret_key=KEY_A, context="shop")
    assert await refused(h, reset, auth=other_app) == TokenRefusal.FORGED
    assert h.statements == []


@pytest.mark.case("P4")
async def test_a_truncated_token_is_refused_without_a_query(ready: tuple[Harness, Any]) -> None:
    """Every prefix of a token (a link cut by a mail client) is refused, before any statement."""
    h, pk = ready
    token = await issue(h, pk)
    for length in range(len(token)):
        assert await refused(h, token[:length]) in (TokenRefusal.MALFORMED, TokenRefusal.FORGED)
    assert await refused(h, token + "A") in (TokenRefusal.MALFORMED, TokenRefusal.FORGED)
    assert h.statements == []


@pytest.mark.case("P5")
async def test_a_token_whose_key_was_dropped_is_refused(ready: tuple[Harness, Any]) -> None:
    """Once the key that sealed a token leaves the ring, the token is refused (as forged)."""
    h, pk = ready
    token = await issue(h, pk)
    dropped: SessionAuth[Any] = SessionAuth(h.User, h.auth.get_db, clock=h.clock, secret_key=KEY_B)
    assert await refused(h, token, auth=dropped) == TokenRefusal.FORGED
    assert h.statements == []


@pytest.mark.case("P6")
async def test_a_reset_token_works_once(ready: tuple[Harness, Any]) -> None:
    """Redeeming a reset token and setting the new password kills it: the second use is stale, in one statement."""
    h, pk = ready
    token = await issue(h, pk)
    async with h.maker() as db:
        user = await h.auth.redeem_token(db, token, RESET, bound_to=(h.User.password,))
        user.password = "new password"
        await db.commit()
    assert await refused(h, token) == TokenRefusal.STALE
    assert len(h.statements) == 1


@pytest.mark.case("P6")
async def test_a_bound_column_change_kills_the_token_even_when_the_session_holds_the_user(
    ready: tuple[Harness, Any],
) -> None:
    """The fingerprint is checked against the database's row, not a stale copy already in the session."""
    h, pk = ready
    token = await issue(h, pk, bound_to=(h.User.name,))
    async with h.maker() as db:
        stale_copy = await db.get(h.User, pk)
        await db.commit()  # expire_on_commit=False: the copy keeps name="ada"
        await h.set_columns(pk, name="ada-renamed")
        with pytest.raises(TokenRefused) as caught:
            await h.auth.redeem_token(db, token, RESET, bound_to=(h.User.name,))
        assert caught.value.reason == TokenRefusal.STALE
        assert stale_copy is not None
        assert stale_copy.name == "ada-renamed"


@pytest.mark.case("P7")
async def test_a_token_is_not_a_session_cookie(ready: tuple[Harness, Any], client_factory: ClientFactory) -> None:
    """A token sent as the session cookie opens no session: 401, nobody logged in."""
    h, pk = ready
    token = await issue(h, pk)
    async with client_factory(h.app, cookies={COOKIE: token}) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.get("/maybe")).json() == {"name": None}


@pytest.mark.case("P8")
async def test_a_session_cookie_is_not_a_token(ready: tuple[Harness, Any], client_factory: ClientFactory) -> None:
    """A logged-in session cookie, sealed with the same key, is refused as a token (forged), without a query."""
    h, _ = ready
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        session_cookie = client.cookies[COOKIE]
    assert await refused(h, session_cookie) == TokenRefusal.FORGED
    assert h.statements == []


@pytest.mark.case("P10")
async def test_a_token_of_a_deleted_or_deactivated_user_is_refused(ready: tuple[Harness, Any]) -> None:
    """No active user with the token's id: refused as unknown_user, in one statement."""
    h, pk = ready
    token = await issue(h, pk)
    await h.set_columns(pk, is_active=False)
    assert await refused(h, token) == TokenRefusal.UNKNOWN_USER
    assert len(h.statements) == 1
    await h.delete(pk)
    assert await refused(h, token) == TokenRefusal.UNKNOWN_USER


@pytest.mark.case("P11")
async def test_redeeming_with_other_bound_columns_fails_closed(ready: tuple[Harness, Any]) -> None:
    """A redemption naming other columns than the issue (or none) refuses the token as stale, never lets it pass."""
    h, pk = ready
    token = await issue(h, pk, bound_to=(h.User.password, h.User.name))
    assert await refused(h, token, bound_to=(h.User.password,)) == TokenRefusal.STALE
    assert await refused(h, token, bound_to=()) == TokenRefusal.STALE
    assert (await redeem(h, token, bound_to=("name", "password"))).id == pk  # order and form do not matter


@pytest.mark.case("P12")
async def test_refusals_are_logged_by_reason_never_with_the_token(
    ready: tuple[Harness, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Each refusal is one log record with a token_ reason code; no record holds the token."""
    h, pk = ready
    token = await issue(h, pk)
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    await refused(h, token, VERIFY)
    h.clock.advance(HOUR)
    await refused(h, token)
    records = [r for r in caplog.records if r.name == "sealed_sessions"]
    assert [getattr(r, "reason", None) for r in records] == ["token_forged", "token_expired"]
    for record in records:
        assert token not in record.getMessage()
        assert token[:20] not in repr(record.__dict__)


@pytest.mark.case("P12")
async def test_a_database_failure_is_database_unavailable(db_kind: str, make_harness: HarnessFactory) -> None:
    """A missing table (or any database failure) raises DatabaseUnavailable, never a user or a refusal."""
    h = await make_harness(db_kind, secret_key=KEY_A)
    pk = await h.create_user("ada")
    token = await issue(h, pk)
    async with h.engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {h.User.__tablename__} RENAME TO gone_{h.User.__tablename__}"))
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await redeem(h, token)
        assert caught.value.operation == "token redemption"
    finally:
        async with h.engine.begin() as connection:
            await connection.execute(text(f"ALTER TABLE gone_{h.User.__tablename__} RENAME TO {h.User.__tablename__}"))


# -- issuing: configuration and shape -------------------------------------------------------------


class _Base(DeclarativeBase):
    pass


class Person(SessionTokenMixin, _Base):
    """A model with columns of every kind a binding meets."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str | None] = mapped_column(String(100), nullable=True)
    avatar: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    born: Mapped[datetime | None] = mapped_column(nullable=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    notes: Mapped[list["Note"]] = relationship()


class Note(_Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))


@pytest.fixture
async def people(clock: FakeClock) -> AsyncIterator[tuple[SessionAuth[Person], async_sessionmaker[AsyncSession]]]:
    """A SessionAuth over ``Person`` on in-memory SQLite, and its sessionmaker."""
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    auth: SessionAuth[Person] = SessionAuth(Person, maker, clock=clock, secret_key=KEY_A)
    yield auth, maker
    await engine.dispose()


async def _person(maker: async_sessionmaker[AsyncSession], **values: Any) -> Person:
    async with maker() as db:
        person = Person(email="ada@example.com", **values)
        db.add(person)
        await db.commit()
        return person


async def test_issuing_needs_the_key(people: tuple[SessionAuth[Person], Any]) -> None:
    """Without ``secret_key``, issuing and redeeming raise ConfigurationError saying to pass the middleware's key."""
    _, maker = people
    keyless: SessionAuth[Person] = SessionAuth(Person, maker)
    person = await _person(maker)
    with pytest.raises(ConfigurationError, match="secret_key"):
        keyless.issue_token(person, RESET, expires_in=HOUR, bound_to=())
    async with maker() as db:
        with pytest.raises(ConfigurationError, match="secret_key"):
            await keyless.redeem_token(db, "x", RESET, bound_to=())


@pytest.mark.parametrize("purpose", ["", "Reset", "a b", "reset:x", "x" * 65, "réinit", None])
async def test_a_purpose_is_a_short_label(people: tuple[SessionAuth[Person], Any], purpose: Any) -> None:
    """A purpose must be 1 to 64 characters of a-z, 0-9, '_', '.', '-': anything else is a ConfigurationError."""
    auth, maker = people
    person = await _person(maker)
    with pytest.raises(ConfigurationError, match="purpose"):
        auth.issue_token(person, purpose, expires_in=HOUR, bound_to=())


@pytest.mark.parametrize(
    ("bound_to", "message"),
    [
        (("missing",), "not a mapped column"),
        ((Person.notes,), "not a mapped column"),
        ((Note.id,), "columns of Person"),
        ((Person.born,), "datetime"),
        ((42,), "columns of Person"),
    ],
)
async def test_bound_columns_are_checked_at_issue(
    people: tuple[SessionAuth[Person], Any], bound_to: Any, message: str
) -> None:
    """Only mapped columns of the user model holding str, bytes, int, bool or UUID can be bound."""
    auth, maker = people
    person = await _person(maker)
    with pytest.raises(ConfigurationError, match=message):
        auth.issue_token(person, RESET, expires_in=HOUR, bound_to=bound_to)


@pytest.mark.parametrize("expires_in", [0, -1, True, 1.5, None])
async def test_expires_in_is_positive_whole_seconds(people: tuple[SessionAuth[Person], Any], expires_in: Any) -> None:
    """``expires_in`` must be a positive whole number of seconds."""
    auth, maker = people
    person = await _person(maker)
    with pytest.raises(ConfigurationError, match="expires_in"):
        auth.issue_token(person, RESET, expires_in=expires_in, bound_to=())


async def test_a_user_must_be_flushed_with_its_bound_columns_as_stored(
    people: tuple[SessionAuth[Person], Any],
) -> None:
    """An unflushed user, or one whose bound column changed without a flush, cannot get a token."""
    auth, maker = people
    with pytest.raises(UnusableUser, match="primary key"):
        auth.issue_token(Person(email="x@example.com"), RESET, expires_in=HOUR, bound_to=())
    person = await _person(maker)
    person.email = "changed@example.com"
    with pytest.raises(UnusableUser, match="flush"):
        auth.issue_token(person, RESET, expires_in=HOUR, bound_to=(Person.email,))


async def test_a_token_is_url_safe_short_and_opaque(people: tuple[SessionAuth[Person], Any]) -> None:
    """A token is base64url, 140 characters for a small integer id, and shows neither the id nor the columns."""
    auth, maker = people
    person = await _person(maker)
    token = auth.issue_token(person, RESET, expires_in=HOUR, bound_to=(Person.email,))
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) == 140
    raw = unb64(token)
    assert b"ada@example.com" not in raw
    assert b'"u"' not in raw
    two = auth.issue_token(person, RESET, expires_in=HOUR, bound_to=(Person.email,))
    assert two != token  # a fresh nonce each time


@pytest.mark.case("P6")
@pytest.mark.parametrize(
    ("before", "after"),
    [(None, ""), ("", None), (None, "None"), (b"", b"\x00")],
)
async def test_none_and_empty_values_bind_differently(
    people: tuple[SessionAuth[Person], Any], before: Any, after: Any
) -> None:
    """A bound column going from NULL to "" (or back), or b"" to b"\\x00", kills the token."""
    auth, maker = people
    column = "avatar" if isinstance(before, bytes) else "nickname"
    person = await _person(maker, **{column: before})
    token = auth.issue_token(person, VERIFY, expires_in=HOUR, bound_to=(column,))
    async with maker() as db:
        assert (await auth.redeem_token(db, token, VERIFY, bound_to=(column,))).id == person.id
        await db.execute(update(Person).values(**{column: after}))
        await db.commit()
    async with maker() as db:
        with pytest.raises(TokenRefused) as caught:
            await auth.redeem_token(db, token, VERIFY, bound_to=(column,))
        assert caught.value.reason == TokenRefusal.STALE


@pytest.mark.case("P9")
async def test_a_deferred_bound_column_is_loaded_with_the_row(people: tuple[SessionAuth[Person], Any]) -> None:
    """A bound column the query would not load is loaded by the one SELECT (no lazy load in async code)."""
    auth, maker = people
    person = await _person(maker, nickname="ada")
    token = auth.issue_token(person, VERIFY, expires_in=HOUR, bound_to=("nickname",))
    async with maker() as db:
        user = (await db.execute(select(Person).where(Person.id == person.id))).scalar_one()
        db.expire(user, ["nickname"])
        assert (await auth.redeem_token(db, token, VERIFY, bound_to=("nickname",))).nickname == "ada"


@pytest.mark.case("P1")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_bit_flip_is_refused(position: int, bit: int) -> None:
    """Flipping any bit of a token's bytes makes it fail to open (forged or malformed), never another token."""
    auth: SessionAuth[Person] = SessionAuth(Person, async_sessionmaker(), clock=FakeClock(), secret_key=KEY_A)
    token = _sealed_for(auth, 7)
    raw = bytearray(unb64(token))
    raw[position % len(raw)] ^= 1 << bit
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenRefused) as caught:
        auth._open_token(auth._token_sealer(RESET), changed)
    assert caught.value.reason in (TokenRefusal.FORGED, TokenRefusal.MALFORMED)


def _sealed_for(auth: SessionAuth[Person], uid: int) -> str:
    """A token for user ``uid`` bound to nothing, sealed without a database (the user is only an identity)."""
    person = Person(id=uid, email="x@example.com")
    make_transient_to_detached(person)
    return auth.issue_token(person, RESET, expires_in=HOUR, bound_to=())


@pytest.mark.case("P3")
async def test_a_token_of_one_user_model_never_redeems_for_another() -> None:
    """Two SessionAuths sharing key and context: a Member token is refused as forged by the Staff auth."""
    from sqlalchemy import String as Text
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    from sealed_sessions.sqlalchemy import SessionTokenMixin as TokenMixin

    class Base(DeclarativeBase):
        pass

    class Member(TokenMixin, Base):
        __tablename__ = "members_cross"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(Text(64))

    class Staff(TokenMixin, Base):
        __tablename__ = "staff_cross"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(Text(64))

    engine = create_async_engine("sqlite+aiosqlite://")
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    members = SessionAuth(Member, maker, secret_key=KEY_A)
    staff = SessionAuth(Staff, maker, secret_key=KEY_A)
    async with maker() as db:
        member, employee = Member(id=1, email="same@example.com"), Staff(id=1, email="same@example.com")
        db.add_all([member, employee])
        await db.commit()
        token = members.issue_token(member, "login_link", expires_in=600, bound_to=(Member.email,))
        with pytest.raises(TokenRefused) as refused:
            await staff.redeem_token(db, token, "login_link", bound_to=(Staff.email,))
        assert refused.value.reason == "forged"
        assert (await members.redeem_token(db, token, "login_link", bound_to=(Member.email,))).id == 1
    await engine.dispose()
