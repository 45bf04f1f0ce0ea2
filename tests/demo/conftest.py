"""Fixtures for the demo's tests: settings on a temporary SQLite file, the app in process on a
hand-moved clock (with a fresh browser, or one logged in), and real uvicorn processes.

The process fixtures start the docker-compose topology on loopback (see ``harness.py``): demo
processes sharing one key and one database, a shared SQLite file always, and a fresh PostgreSQL
database when SEALED_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from examples.demo.settings import Settings
from tests.helpers import KEY_A, FakeClock, https_client

from .flows import USER, api_sign_up, running
from .harness import CLUSTER_SIZE, DemoServer, demo_cluster, fresh_postgres_database


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    """Settings for an in-process demo: a temporary SQLite file, a fixed key, HTTPS, a cheap password hash."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        keys=(KEY_A,),
        https_only=True,
        instance_name="test-instance",
        scrypt_n=2**10,  # TEST ONLY, for speed: the demo hashes at 2**17, and no variable lowers it
    )


@pytest.fixture
async def demo_app(demo_settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """The in-process demo on ``demo_settings``, its lifespan run, on the hand-moved ``clock``."""
    async with running(demo_settings, clock) as app:
        yield app


@pytest.fixture
async def demo_client(demo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of ``demo_app`` with no session yet."""
    async with https_client(demo_app) as client:
        yield client


@pytest.fixture
async def demo_user(demo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of ``demo_app`` that registered as :data:`~.flows.USER` and is logged in."""
    async with https_client(demo_app) as client:
        await api_sign_up(client, USER)
        yield client


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def demo_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database every demo process of a module shares: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo-sqlite') / 'demo.db'}"
        return
    base_url = os.environ.get("SEALED_TEST_POSTGRES_URL")
    if not base_url:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    with fresh_postgres_database(base_url) as url:
        yield url


@pytest.fixture(scope="module")
def three_servers(demo_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DemoServer]]:
    """CLUSTER_SIZE (three) demo processes on loopback sharing one key and one database."""
    with demo_cluster(CLUSTER_SIZE, demo_database_url, tmp_path_factory.mktemp("demo-logs")) as servers:
        yield servers
