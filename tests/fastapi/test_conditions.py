"""Per-route conditions (``auth.user(where=...)``): in the check's one statement; 403 keeps the session (Q)."""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built here.

import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import String, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealed_sessions import ConfigurationError
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.sqlalchemy import SessionTokenMixin, new_session_token
from tests.helpers import COOKIE, ClientFactory, FakeClock

from .device_harness import DeviceHarnessFactory
from .harness import Harness, build_app, database_url, make_user_model
from .replica_app import replica_app


def make_member_model(table: str) -> tuple[type[DeclarativeBase], Any]:
    """The harness's user fields plus a role, a tenant and a nullable verified flag."""

    class Base(DeclarativeBase):
        pass

    class Member(SessionTokenMixin, Base):
        __tablename__ = table
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(64), unique=True)
        password: Mapped[str] = mapped_column(String(64), default="initial")
        is_active: Mapped[bool] = mapped_column(default=True)
        role: Mapped[str] = mapped_column(String(16), default="member")
        tenant_id: Mapped[int] = mapped_column(default=1)
        is_verified: Mapped[bool | None] = mapped_column(default=None)

        @property
        def is_staff(self) -> bool:  # a plain property: SQL cannot evaluate it
            return self.role == "admin"

    return Base, Member


def add_condition_routes(app: FastAPI, auth: SessionAuth[Any], user: Any) -> None:
    """Routes guarded by a role, a nullable flag, a tenant from the path, both, and a condition with freshness."""

    def route(path: str, dependency: Callable[..., Awaitable[Any]]) -> None:
        async def endpoint(found: Annotated[Any, Depends(dependency)]) -> dict[str, str]:
            return {"name": found.name}

        app.get(path)(endpoint)

    same_tenant = lambda request: user.tenant_id == request.path_params["tenant_id"]  # noqa: E731
    route("/admin", auth.user(where=user.role == "admin"))
    route("/verified", auth.user(where=user.is_verified))
    route("/tenants/{tenant_id:int}/items", auth.user(where=same_tenant))
    route("/tenants/{tenant_id:int}/admin", auth.user(where=[user.role == "admin", same_tenant]))
    route("/sudo-admin", auth.user(where=user.role == "admin", fresh=300))


@pytest.fixture
async def members(db_kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """The test app on ``db_kind`` with the member model and the condition routes; its table dropped after."""
    engine = create_async_engine(database_url(db_kind, tmp_path))
    base, member = make_member_model(f"members_{secrets.token_hex(4)}")
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    h = build_app(engine, member, FakeClock())
    add_condition_routes(h.app, h.auth, member)
    yield h
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.drop_all)
    await engine.dispose()


def one_select_with_the_condition(h: Harness) -> None:
    assert len(h.statements) == 1, h.statements
    sql = " ".join(h.statements[0].split()).lower()
    assert sql.startswith("select ") and "case when" in sql and ".session_token = " in sql, sql


@pytest.mark.case("Q6")
async def test_a_met_condition_is_in_the_one_statement(members: Harness, client_factory: ClientFactory) -> None:
    """An admin on an admin route: 200 after exactly one SELECT that carries the condition as a column."""
    h = members
    await h.create_user("root", role="admin")
    async with client_factory(h.app) as client:
        await client.post("/login/root")
        h.statements.clear()
        assert (await client.get("/admin")).json() == {"name": "root"}
        one_select_with_the_condition(h)


@pytest.mark.case("Q7")
async def test_a_failed_condition_is_403_and_keeps_the_session(members: Harness, client_factory: ClientFactory) -> None:
    """A member on an admin route: 403 Forbidden after one statement, no Set-Cookie; the session still works."""
    h = members
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        h.statements.clear()
        response = await client.get("/admin")
        assert response.status_code == 403
        assert response.json() == {"detail": "Forbidden"}
        assert "set-cookie" not in response.headers and "www-authenticate" not in response.headers
        one_select_with_the_condition(h)
        assert client.cookies[COOKIE] == cookie
        assert (await client.get("/me")).status_code == 200


@pytest.mark.case("Q8")
@pytest.mark.parametrize("change", ["revoked", "inactive", "deleted"])
async def test_a_dead_session_is_401_and_emptied_not_403(
    change: str, members: Harness, client_factory: ClientFactory
) -> None:
    """A revoked, inactive or deleted user on a conditional route: the ordinary 401 and a deletion cookie."""
    h = members
    pk = await h.create_user("root", role="admin")
    async with client_factory(h.app) as client:
        await client.post("/login/root")
        if change == "revoked":
            await h.set_columns(pk, session_token=new_session_token())
        elif change == "inactive":
            await h.set_columns(pk, is_active=False)
        else:
            await h.delete(pk)
        h.statements.clear()
        response = await client.get("/admin")
        assert response.status_code == 401
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert len(h.statements) == 1


@pytest.mark.case("Q9")
@pytest.mark.parametrize(("verified", "status"), [(None, 403), (False, 403), (True, 200)])
async def test_a_null_condition_counts_as_false(
    verified: bool | None, status: int, members: Harness, client_factory: ClientFactory
) -> None:
    """where=User.is_verified: NULL and false both answer 403 (CASE WHEN takes only true), true answers 200."""
    h = members
    await h.create_user("ada", is_verified=verified)
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/verified")).status_code == status
        one_select_with_the_condition(h)


@pytest.mark.case("Q10")
async def test_a_tenant_from_the_path_is_bound_per_request(members: Harness, client_factory: ClientFactory) -> None:
    """A callable condition takes the tenant id from the path: own tenant 200, another 403, the same SQL text."""
    h = members
    await h.create_user("ada", tenant_id=1)
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/tenants/1/items")).status_code == 200
        assert (await client.get("/tenants/2/items")).status_code == 403
        assert (await client.get("/tenants/x/items")).status_code == 404  # the {tenant_id:int} route did not match
        assert len(h.statements) == 2 and h.statements[0] == h.statements[1], h.statements  # values bound


@pytest.mark.case("Q10")
async def test_several_conditions_must_all_hold(members: Harness, client_factory: ClientFactory) -> None:
    """where=[role, tenant]: only an admin of that tenant passes; one statement each time."""
    h = members
    await h.create_user("root", role="admin", tenant_id=1)
    await h.create_user("ada", tenant_id=1)
    async with client_factory(h.app) as root, client_factory(h.app) as ada:
        await root.post("/login/root")
        await ada.post("/login/ada")
        h.statements.clear()
        assert (await root.get("/tenants/1/admin")).status_code == 200
        assert (await root.get("/tenants/2/admin")).status_code == 403
        assert (await ada.get("/tenants/1/admin")).status_code == 403
        assert len(h.statements) == 3


@pytest.mark.case("Q11")
async def test_a_forbidden_route_answers_403_before_asking_for_a_fresh_login(
    members: Harness, client_factory: ClientFactory
) -> None:
    """where= with fresh=: a member gets 403 even when stale; a stale admin gets the fresh-login 401; one statement."""
    h = members
    await h.create_user("root", role="admin")
    await h.create_user("ada")
    async with client_factory(h.app) as root, client_factory(h.app) as ada:
        await root.post("/login/root")
        await ada.post("/login/ada")
        assert (await root.get("/sudo-admin")).status_code == 200
        h.clock.advance(301)
        h.statements.clear()
        assert (await ada.get("/sudo-admin")).status_code == 403
        stale = await root.get("/sudo-admin")
        assert stale.status_code == 401 and stale.json() == {"detail": "Recent login required"}
        assert "set-cookie" not in stale.headers
        assert len(h.statements) == 2


async def test_a_condition_in_device_mode_is_in_the_joined_statement(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Device mode: the condition is a column of the one statement joining user and device row."""
    h = await make_device_harness(db_kind)
    route = h.auth.user(where=h.User.name == "root")

    @h.app.get("/root")
    async def root_only(user: Annotated[Any, Depends(route)]) -> dict[str, str]:
        return {"name": user.name}

    await h.create_user("root")
    await h.create_user("ada")
    async with client_factory(h.app) as root, client_factory(h.app) as ada:
        await root.post("/login/root")
        await ada.post("/login/ada")
        h.statements.clear()
        assert (await root.get("/root")).status_code == 200
        assert (await ada.get("/root")).status_code == 403
        assert len(h.statements) == 2, h.statements
        assert all(h.Device.__tablename__ in s and "CASE" in s for s in h.statements)


async def test_an_overridden_statement_keeps_the_condition(members: Harness, client_factory: ClientFactory) -> None:
    """A SessionAuth whose statement() is overridden still gets the route's condition added to it."""
    h = members
    await h.create_user("ada")
    h.auth.statement = lambda uid, token: select(h.User).where(h.User.id == uid)  # type: ignore[method-assign]
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/admin")).status_code == 403
        assert len(h.statements) == 1 and "CASE" in h.statements[0]


@pytest.mark.case("Q10")
async def test_a_path_value_too_large_for_any_column_is_a_403_not_a_500(
    members: Harness, client_factory: ClientFactory
) -> None:
    """A tenant id over 64 bits in the path cannot match any row: 403 in one statement, never a driver error."""
    h = members
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        response = await client.get(f"/tenants/{2**64}/items")
        assert response.status_code == 403
        assert len(h.statements) == 1
        assert (await client.get("/tenants/1/items")).status_code == 200


@pytest.mark.case("Q7")
async def test_an_overridden_statement_selecting_more_columns_still_fails_closed(
    members: Harness, client_factory: ClientFactory
) -> None:
    """An override that selects an extra (truthy) column does not pass for the condition: 403 for a member."""
    h = members
    await h.create_user("ada")
    h.auth.statement = lambda uid, token: select(h.User, h.User.name).where(  # type: ignore[method-assign]
        h.User.id == uid, h.User.session_token == token
    )
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        assert (await client.get("/admin")).status_code == 403


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(True, id="python-bool"),
        pytest.param("role = 'admin'", id="text"),
        pytest.param([], id="empty"),
        pytest.param(lambda m: m.name, id="string-column"),
        pytest.param(lambda m: m.is_staff, id="plain-property"),
    ],
)
def test_a_condition_sql_cannot_evaluate_is_refused_at_import_time(where: Any) -> None:
    """A Python bool, raw text, nothing, a non-boolean column or a plain @property: ConfigurationError at once."""
    _, member = make_member_model("members_config")
    auth: SessionAuth[Any] = SessionAuth(member, no_db)
    if callable(where) and not isinstance(where, list):
        where = where(member)
    with pytest.raises(ConfigurationError):
        auth.user(where=where)


@pytest.mark.parametrize("fresh", [0, -1, 2.5])
def test_fresh_must_be_positive_whole_seconds(fresh: Any) -> None:
    """auth.user(fresh=...) refuses what fresh_user refuses."""
    _, member = make_member_model("members_fresh")
    with pytest.raises(ConfigurationError):
        SessionAuth(member, no_db).user(where=member.role == "admin", fresh=fresh)


async def test_a_callable_giving_a_python_bool_fails_loudly(members: Harness, client_factory: ClientFactory) -> None:
    """A where= callable that returns a Python bool (not SQL) raises ConfigurationError, never a silent allow."""
    h = members
    route = h.auth.user(where=lambda request: True)  # type: ignore[arg-type,return-value]  # the mistake under test

    @h.app.get("/broken")
    async def broken(user: Annotated[Any, Depends(route)]) -> dict[str, str]:
        return {"name": user.name}  # pragma: no cover - never reached

    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        with pytest.raises(ConfigurationError):
            await client.get("/broken")


# -- read replica: a false condition is a doubt, confirmed on the primary -----------------------------------------


async def replica_pair(tmp_path: Path) -> tuple[FastAPI, Any, AsyncEngine, AsyncEngine, dict[str, list[str]]]:
    """replica_app on two SQLite files (primary, replica: a copy), with a route only the user "root" may use."""
    base, user = make_user_model("int", "users")
    files = tmp_path / "primary.db", tmp_path / "replica.db"
    primary, replica = (create_async_engine(f"sqlite+aiosqlite:///{f}") for f in files)
    async with primary.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    async with AsyncSession(primary) as db:
        db.add(user(name="ada"))
        await db.commit()
    shutil.copyfile(*files)
    sent: dict[str, list[str]] = {"primary": [], "replica": []}
    for name, engine in (("primary", primary), ("replica", replica)):

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any, _name: str = name) -> None:
            sent[_name].append(statement)

    app, auth = replica_app(user, lambda: primary, lambda: replica)
    for path, on_primary in (("/root", False), ("/root-primary", True)):
        dependency = auth.user(where=user.name == "root", on_primary=on_primary)

        async def root_only(found: Annotated[Any, Depends(dependency)]) -> dict[str, str]:
            return {"name": found.name}

        app.get(path)(root_only)
    return app, user, primary, replica, sent


@pytest.mark.case("Q12")
async def test_a_condition_false_on_the_replica_is_confirmed_on_the_primary(
    tmp_path: Path, client_factory: ClientFactory
) -> None:
    """Replica says true: one statement there, none on the primary; says false: the primary decides (granted: 200)."""
    app, user, primary, replica, sent = await replica_pair(tmp_path)
    try:
        async with client_factory(app, base_url="http://testserver") as client:
            await client.post("/login/ada")
            async with AsyncSession(primary) as db:  # granted on the primary; the replica lags
                await db.execute(update(user).values(name="root"))
                await db.commit()
            sent["primary"].clear()
            sent["replica"].clear()
            assert (await client.get("/root")).status_code == 200
            assert len(sent["replica"]) == 1 and len(sent["primary"]) == 1
            async with AsyncSession(primary) as db:  # taken away on the primary too: 403 after both
                await db.execute(update(user).values(name="ada"))
                await db.commit()
            sent["primary"].clear()
            sent["replica"].clear()
            assert (await client.get("/root")).status_code == 403
            assert len(sent["replica"]) == 1 and len(sent["primary"]) == 1
            async with AsyncSession(replica) as db:  # the replica says true: trusted, as a hit is
                await db.execute(update(user).values(name="root"))
                await db.commit()
            sent["primary"].clear()
            sent["replica"].clear()
            assert (await client.get("/root")).status_code == 200
            assert len(sent["replica"]) == 1 and sent["primary"] == []
            sent["replica"].clear()
            assert (await client.get("/root-primary")).status_code == 403  # on_primary: the primary's answer only
            assert sent["replica"] == []
    finally:
        await primary.dispose()
        await replica.dispose()


async def no_db() -> AsyncSession:  # pragma: no cover - configuration tests never reach the database
    raise AssertionError("not called")
