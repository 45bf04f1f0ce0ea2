"""The revocation check on its own, without FastAPI: construction, the statement, the session's
credentials, the unit of work and the database failures (``sealed_sessions._revocation``)."""

import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, ColumnElement, String, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import ConfigurationError, SealedSessionsError
from sealed_sessions.fastapi import DatabaseUnavailable, RevocationCheck, UnsupportedModel
from sealed_sessions.sqlalchemy import SessionTokenMixin, new_session_token

from .harness import settle_aiosqlite_threads


class Base(DeclarativeBase):
    pass


class Member(SessionTokenMixin, Base):
    __tablename__ = "check_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20), default="ada")
    is_active: Mapped[bool] = mapped_column(default=True)


class UuidMember(SessionTokenMixin, Base):
    __tablename__ = "check_uuid_members"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TextMember(SessionTokenMixin, Base):
    __tablename__ = "check_text_members"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)


class NoMixin(Base):
    __tablename__ = "check_plain"
    id: Mapped[int] = mapped_column(primary_key=True)


class TwoKeys(SessionTokenMixin, Base):
    __tablename__ = "check_two_keys"
    a: Mapped[int] = mapped_column(primary_key=True)
    b: Mapped[int] = mapped_column(primary_key=True)


TOKEN = new_session_token()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite database with one active member (id 1) holding ``TOKEN``."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'check.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all, tables=[Member.__table__])  # type: ignore[list-item]
    async with AsyncSession(engine) as db:
        db.add(Member(id=1, session_token=TOKEN))
        await db.commit()
    yield engine
    await engine.dispose()


def statements_of(engine: AsyncEngine) -> list[str]:
    """A list that fills with every statement ``engine`` sends from now on."""
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        sent.append(statement)

    return sent


def session_for(uid: object, token: object = TOKEN) -> dict[str, Any]:
    return {"_auth_uid": uid, "_auth_token": token}


# -- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [NoMixin, TwoKeys, int])
def test_unusable_models_are_unsupported(model: type[Any]) -> None:
    """A model without the mixin or one primary key is an UnsupportedModel: a ConfigurationError and a TypeError."""
    with pytest.raises(UnsupportedModel) as raised:
        RevocationCheck(model)
    assert isinstance(raised.value, ConfigurationError)
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, SealedSessionsError)


def where_clause(check: RevocationCheck[Any], uid: Any) -> str:
    """The WHERE clause of ``check``'s statement, on one line."""
    return " ".join(str(check.statement(uid, "t")).split()).split(" WHERE ", 1)[1]


def test_active_attribute_choices() -> None:
    """The mapped is_active is checked by default, None drops it, and a named attribute must exist."""
    assert "is_active" in where_clause(RevocationCheck(Member), 1)
    assert "is_active" not in where_clause(RevocationCheck(Member, active_attribute=None), 1)
    assert "is_active" not in where_clause(RevocationCheck(UuidMember), uuid.uuid4())  # not mapped: not checked
    with pytest.raises(ConfigurationError, match="enabled"):
        RevocationCheck(Member, active_attribute="enabled")


# -- the statement --------------------------------------------------------------------------------


def test_statement_selects_by_id_and_token_in_one_where() -> None:
    """The statement loads the model by primary key and token (and active flag) in one WHERE."""
    assert str(RevocationCheck(Member).statement(1, "t")).startswith("SELECT ")
    where = where_clause(RevocationCheck(Member), 1)
    assert "check_members.id = " in where
    assert "check_members.session_token = " in where
    assert "check_members.is_active" in where


def test_int_ids_are_bound_as_64_bit() -> None:
    """An int id is a BigInteger parameter, so a forged id beyond a 32-bit column matches nothing instead of failing."""
    compiled = RevocationCheck(Member).statement(2**40, "t").compile()
    assert {type(b.type) for b in compiled.binds.values() if b.value == 2**40} == {BigInteger}


# -- the session's credentials --------------------------------------------------------------------


def test_parse_uid_for_int_keys() -> None:
    """An int primary key accepts 64-bit ints only: no bools, strings or out-of-range values."""
    check = RevocationCheck(Member)
    assert check.parse_uid(7) == 7
    assert check.parse_uid(-(2**63)) == -(2**63)
    for bad in (True, "7", 2**63, 1.0, None, [1]):
        assert check.parse_uid(bad) is None, bad


def test_parse_uid_for_uuid_and_text_keys() -> None:
    """A UUID key parses the string form; a text key takes 1 to 255 characters; anything else is None."""
    value = uuid.uuid4()
    assert RevocationCheck(UuidMember).parse_uid(str(value)) == value
    for bad in ("not-a-uuid", "", 7, "x" * 256):
        assert RevocationCheck(UuidMember).parse_uid(bad) is None, bad
    assert RevocationCheck(TextMember).parse_uid("abc") == "abc"
    for bad in ("", "x" * 256, 7):
        assert RevocationCheck(TextMember).parse_uid(bad) is None, bad


@pytest.mark.case("H11")
@pytest.mark.parametrize("bad", ["a\x00b", "\x00", "ab\ncd", "\x85next-line", "x\ud800", "\x7f"])
def test_non_printable_text_ids_are_refused_without_a_query(bad: str) -> None:
    """A text or UUID id holding NUL, C0 or C1 controls, DEL or a lone surrogate is refused before any query."""
    assert RevocationCheck(TextMember).parse_uid(bad) is None
    assert RevocationCheck(UuidMember).parse_uid(bad) is None


def test_unusual_but_valid_text_ids_are_kept() -> None:
    """Ids with a no-break space, a zero-width joiner, a soft hyphen or right-to-left text are real ids, not refused."""
    for good in ("a\u00a0b", "\U0001f469\u200d\U0001f4bb", "co\u00adop", "\u202eabc", "Zo\u00eb"):
        assert RevocationCheck(TextMember).parse_uid(good) == good


@pytest.mark.case("H12")
def test_a_hybrid_active_flag_that_is_a_constant_in_sql_is_refused_at_startup() -> None:
    """An is_active hybrid whose class-level expression is a Python constant fails construction, not every request."""

    class ConstantActive(SessionTokenMixin, Base):
        __tablename__ = "check_constant_active"
        id: Mapped[int] = mapped_column(primary_key=True)

        @hybrid_property
        def is_active(self) -> bool:
            return True

    with pytest.raises(ConfigurationError, match=r"is_active\.expression"):
        RevocationCheck(ConstantActive)

    class ExpressionActive(SessionTokenMixin, Base):
        __tablename__ = "check_expression_active"
        id: Mapped[int] = mapped_column(primary_key=True)
        disabled_at: Mapped[int | None] = mapped_column(default=None)

        @hybrid_property
        def is_active(self) -> bool:
            return self.disabled_at is None

        @is_active.inplace.expression
        @classmethod
        def _is_active_expression(cls) -> ColumnElement[bool]:
            return cls.disabled_at.is_(None)

    assert "disabled_at IS NULL" in where_clause(RevocationCheck(ExpressionActive), 1)


# -- the check ------------------------------------------------------------------------------------


async def test_no_user_id_means_no_user_and_no_query(engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    """A session without a user id gives None without a statement or a log record."""
    sent = statements_of(engine)
    caplog.set_level(logging.DEBUG, "sealed_sessions")
    async with AsyncSession(engine) as db:
        assert await RevocationCheck(Member)(db, {"cart": ["book"]}) is None
    assert sent == []
    assert caplog.records == []


@pytest.mark.parametrize(
    "session",
    [
        session_for("1"),
        session_for(True),
        session_for(1, ""),
        session_for(1, 5),
        session_for(1, "x\x00y"),
        {"_auth_uid": 1},
    ],
)
async def test_malformed_credentials_are_refused_without_a_query(
    session: dict[str, Any], engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A user id or token of the wrong type or shape gives None, no statement, and a session_malformed record."""
    sent = statements_of(engine)
    caplog.set_level(logging.INFO, "sealed_sessions")
    async with AsyncSession(engine) as db:
        assert await RevocationCheck(Member)(db, session) is None
    assert sent == []
    assert [getattr(r, "reason", None) for r in caplog.records] == ["session_malformed"]


async def test_matching_row_gives_the_user(engine: AsyncEngine) -> None:
    """The session's id and current token give the user, in one statement."""
    sent = statements_of(engine)
    async with AsyncSession(engine) as db:
        user = await RevocationCheck(Member)(db, session_for(1))
    assert user is not None
    assert user.id == 1
    assert len(sent) == 1


@pytest.mark.parametrize("change", ["token", "inactive", "deleted"])
async def test_stale_sessions_give_none(change: str, engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    """A rotated token, an inactive user or a deleted row gives None and a session_revoked record."""
    async with AsyncSession(engine) as db:
        member = await db.get(Member, 1)
        assert member is not None
        if change == "token":
            member.session_token = new_session_token()
        elif change == "inactive":
            member.is_active = False
        else:
            await db.delete(member)
        await db.commit()
    caplog.set_level(logging.INFO, "sealed_sessions")
    async with AsyncSession(engine) as db:
        assert await RevocationCheck(Member)(db, session_for(1)) is None
    assert [getattr(r, "reason", None) for r in caplog.records] == ["session_revoked"]


async def test_statement_factory_replaces_the_statement(engine: AsyncEngine) -> None:
    """A statement= factory is used instead of the built-in one (how SessionAuth honours an override)."""
    async with AsyncSession(engine) as db:
        user = await RevocationCheck(Member)(
            db, session_for(1, "x" * 43), statement=lambda uid, token: select(Member).where(Member.id == uid)
        )
    assert user is not None


# -- the unit of work -----------------------------------------------------------------------------


async def test_own_unit_of_work_ends_before_returning(engine: AsyncEngine) -> None:
    """With nothing begun, the check commits without expiring the user, so the caller may begin its own transaction."""
    async with async_sessionmaker(engine, expire_on_commit=True)() as db:
        user = await RevocationCheck(Member)(db, session_for(1))
        assert user is not None
        assert not db.in_transaction()
        assert db.sync_session.expire_on_commit  # restored after the check's commit
        assert user.name == "ada"  # still loaded: no lazy load, which would fail outside greenlet
        async with db.begin():
            user.name = "grace"
    async with AsyncSession(engine) as db:
        assert await db.scalar(select(Member.name)) == "grace"


async def test_own_unit_on_sqlite_ends_with_one_driver_call(engine: AsyncEngine) -> None:
    """On SQLite the check's own unit ends with one ROLLBACK, no COMMIT and no pool reset, the user kept."""
    calls: list[str] = []
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "commit", lambda conn: calls.append("commit"))
    event.listen(sync_engine, "rollback", lambda conn: calls.append("rollback"))
    event.listen(
        sync_engine.pool, "reset", lambda dbapi, record, state: calls.append(f"reset {state.transaction_was_reset}")
    )
    async with async_sessionmaker(engine, expire_on_commit=True)() as db:
        user = await RevocationCheck(Member)(db, session_for(1))
        assert calls == ["rollback", "reset True"]  # the pool's reset is no second call to the driver
        assert user is not None
        assert not db.in_transaction()
        assert user in db
        assert user.name == "ada"  # neither expired nor expunged
        async with db.begin():
            user.name = "grace"
    async with AsyncSession(engine) as db:
        assert await db.scalar(select(Member.name)) == "grace"


async def test_commit_listeners_still_see_the_checks_commit(engine: AsyncEngine) -> None:
    """With a session after_commit listener, the check's own unit is committed, so the listener sees it."""
    commits: list[object] = []
    async with AsyncSession(engine) as db:
        event.listen(db.sync_session, "after_commit", commits.append)
        user = await RevocationCheck(Member)(db, session_for(1))
        assert commits == [db.sync_session]
        assert user is not None
        assert not db.in_transaction()
        assert user.name == "ada"


async def test_a_writing_statement_given_to_load_is_committed(engine: AsyncEngine) -> None:
    """Only a SELECT ends without a COMMIT: an UPDATE ... RETURNING passed to load() is committed, not rolled back."""
    statement = update(Member).where(Member.id == 1).values(name="touched").returning(Member)
    async with AsyncSession(engine) as db:
        user = await RevocationCheck(Member).load(db, statement)  # type: ignore[arg-type]  # typed as a Select, used as any statement
        assert user is not None
        assert not db.in_transaction()
    async with AsyncSession(engine) as db:
        assert await db.scalar(select(Member.name).where(Member.id == 1)) == "touched"


async def test_inside_a_transaction_the_check_is_one_more_statement(engine: AsyncEngine) -> None:
    """With a transaction begun, the check neither commits nor ends it."""
    async with AsyncSession(engine) as db:
        await db.begin()
        await db.execute(select(Member.id))
        assert await RevocationCheck(Member)(db, session_for(1)) is not None
        assert db.in_transaction()
        await db.rollback()


async def test_autocommit_choice(engine: AsyncEngine) -> None:
    """autocommit=True or False decides; None autocommits on asyncpg only."""
    sqlite = engine.sync_engine
    asyncpg = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none").sync_engine
    assert RevocationCheck(Member).uses_autocommit(asyncpg)
    assert not RevocationCheck(Member).uses_autocommit(sqlite)
    assert RevocationCheck(Member, autocommit=True).uses_autocommit(sqlite)
    assert not RevocationCheck(Member, autocommit=False).uses_autocommit(asyncpg)


async def test_autocommit_check_runs_in_autocommit_mode(engine: AsyncEngine) -> None:
    """With autocommit on, the SELECT runs on a connection in AUTOCOMMIT isolation."""
    levels: list[object] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        levels.append(conn.get_execution_options().get("isolation_level"))

    async with AsyncSession(engine) as db:
        assert await RevocationCheck(Member, autocommit=True)(db, session_for(1)) is not None
        assert await RevocationCheck(Member, autocommit=False)(db, session_for(1)) is not None
    assert levels == ["AUTOCOMMIT", None]


# -- database failures ----------------------------------------------------------------------------


async def test_unreachable_database_raises_database_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable database raises DatabaseUnavailable naming exception classes only, logged once as a warning."""
    secret_path = tmp_path / "missing-secret-dir" / "app.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{secret_path}")
    caplog.set_level(logging.DEBUG, "sealed_sessions")
    try:
        async with AsyncSession(engine) as db:
            with pytest.raises(DatabaseUnavailable) as raised:
                await RevocationCheck(Member)(db, session_for(1))
    finally:
        await engine.dispose()
        await settle_aiosqlite_threads()
    error = raised.value
    assert error.connectivity
    assert error.error == "OperationalError"
    assert error.__cause__ is None
    assert error.__context__ is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert getattr(record, "reason", None) == "database_unavailable"
    for text in (str(error), record.getMessage()):
        for secret in (TOKEN, "missing-secret-dir", "SELECT", "session_token"):
            assert secret not in text


async def test_other_database_errors_are_logged_as_errors(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error that is not connection trouble raises DatabaseUnavailable too, logged as an error."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def fail(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        raise sqlite3.ProgrammingError(f"cannot run {statement} with {params}")

    caplog.set_level(logging.DEBUG, "sealed_sessions")
    async with AsyncSession(engine) as db:
        with pytest.raises(DatabaseUnavailable) as raised:
            await RevocationCheck(Member)(db, session_for(1))
    assert not raised.value.connectivity
    assert raised.value.error == "ProgrammingError"
    assert TOKEN not in str(raised.value)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert getattr(record, "reason", None) == "database_error"
    assert TOKEN not in record.getMessage()


def test_login_refuses_a_user_whose_id_the_check_would_refuse() -> None:
    """A text primary key with a control character cannot log in (UnusableUser) instead of getting 401 forever."""
    from sqlalchemy.orm.attributes import set_committed_value
    from sqlalchemy.orm.session import make_transient_to_detached

    from sealed_sessions.fastapi import SessionAuth, UnusableUser

    async def no_db() -> AsyncSession:  # never called: session_data touches no database
        raise AssertionError

    auth: SessionAuth[TextMember] = SessionAuth(TextMember, no_db)
    member = TextMember(id="bad\x00id")
    set_committed_value(member, "session_token", TOKEN)
    make_transient_to_detached(member)  # gives it an identity, as a loaded row has
    with pytest.raises(UnusableUser, match="control"):
        auth.session_data(member)
    good = TextMember(id="good id")
    set_committed_value(good, "session_token", TOKEN)
    make_transient_to_detached(good)
    assert auth.session_data(good)["_auth_uid"] == "good id"


@pytest.mark.case("M3")
async def test_an_outage_does_not_flood_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Per minute, the first 10 database failures of a kind are logged, the rest counted into one summary."""
    import sealed_sessions._unit_of_work as unit_of_work

    now = [1_800_000_000.0]
    log = unit_of_work._OutageLog()
    log.clock = lambda: now[0]
    monkeypatch.setattr(unit_of_work, "_OUTAGE_LOG", log)
    caplog.set_level(logging.WARNING, "sealed_sessions")

    async def refused() -> None:
        raise ConnectionRefusedError("refused")

    for _ in range(25):
        with pytest.raises(DatabaseUnavailable):
            await unit_of_work.guarded(refused())
    assert [getattr(r, "reason", None) for r in caplog.records] == ["database_unavailable"] * 10
    caplog.clear()
    now[0] += 60
    with pytest.raises(DatabaseUnavailable):
        await unit_of_work.guarded(refused())
    summary, resumed = caplog.records
    assert summary.suppressed == {"database_unavailable": 15}  # type: ignore[attr-defined]
    assert getattr(resumed, "reason", None) == "database_unavailable"
