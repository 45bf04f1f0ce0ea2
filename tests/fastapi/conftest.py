"""Fixtures for the FastAPI tests, built from harness.py (import plain names from there)."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from tests.helpers import FakeClock

from .device_harness import DeviceHarness, DeviceHarnessFactory, close_device_harness, open_device_harness
from .harness import DATABASES, Harness, HarnessFactory, build_app, database_url, make_user_model


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Build harnesses on a database kind (``sqlite``/``postgres``/``mariadb``); drop their tables after."""
    created: list[tuple[AsyncEngine, type[DeclarativeBase]]] = []

    async def factory(
        kind: str,
        pk: str = "int",
        *,
        url: str | None = None,
        engine_options: dict[str, Any] | None = None,
        nullable_token: bool = False,
        **auth: Any,
    ) -> Harness:
        engine = create_async_engine(url or database_url(kind, tmp_path), **(engine_options or {}))
        base, user = make_user_model(pk, f"users_{secrets.token_hex(4)}", nullable_token=nullable_token)
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.create_all)
        created.append((engine, base))
        return build_app(engine, user, FakeClock(), **auth)

    yield factory
    for engine, base in created:
        async with engine.begin() as conn:
            await conn.run_sync(base.metadata.drop_all)
        await engine.dispose()


@pytest.fixture
async def make_device_harness(tmp_path: Path) -> AsyncIterator[DeviceHarnessFactory]:
    """Build device-mode harnesses on a database kind (``url=`` overrides its URL); drop their tables after."""
    created: list[DeviceHarness] = []

    async def factory(kind: str, *, url: str | None = None, **options: Any) -> DeviceHarness:
        created.append(await open_device_harness(url or database_url(kind, tmp_path), **options))
        return created[-1]

    yield factory
    for harness in created:
        await close_device_harness(harness)


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """The database under test: SQLite always, PostgreSQL and MariaDB when their URLs are set (H10)."""
    kind: str = request.param
    return kind
