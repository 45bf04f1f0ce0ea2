"""Fixtures every test module may use, built from tests/helpers.py (import plain names from there)."""

from __future__ import annotations

import pytest

from tests.helpers import ClientFactory, FakeClock, https_client


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock starting at START."""
    return FakeClock()


@pytest.fixture
def client_factory() -> ClientFactory:
    """Open an ``httpx.AsyncClient`` on an ASGI app over https://testserver (Secure cookies return)."""
    return https_client
