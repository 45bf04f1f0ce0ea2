"""Fixtures every test module may use: fixed keys, an injectable clock, an HTTPS test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from starlette.types import ASGIApp

# Fixed, random-looking keys for tests (generated once with `python -m sealed_sessions keygen`).
KEY_A = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
KEY_B = "Qk3zT0Yc2sR8wW5eL1aN6hJ9uI4oP7gF2dS5aZ8xC1v"
KEY_C = "m9N2b5V8c1X4z7L0k3J6h9G2f5D8s1A4q7W0e3R6t9Y"

START = 1_800_000_000
"""A fixed "now" for clock-driven tests: 2027-01-15T08:00:00Z."""


class FakeClock:
    """A clock the test moves by hand: ``clock()`` returns the time, ``clock.advance(s)`` moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_factory() -> ClientFactory:
    """Open an ``httpx.AsyncClient`` on an ASGI app over https://testserver (Secure cookies return)."""

    @asynccontextmanager
    async def factory(
        app: ASGIApp, base_url: str = "https://testserver", **kwargs: object
    ) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs) as client:  # type: ignore[arg-type]
            yield client

    return factory
