"""Fixtures for the security suites: database URLs (skip when unset) and unique table names."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy.engine import make_url

KEY_A = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
KEY_B = "Qk3zT0Yc2sR8wW5eL1aN6hJ9uI4oP7gF2dS5aZ8xC1v"
KEY_C = "m9N2b5V8c1X4z7L0k3J6h9G2f5D8s1A4q7W0e3R6t9Y"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def loopback_url(env: str) -> str | None:
    """The URL in ``env``, or ``None``; a non-loopback host is refused (these tests only touch loopback)."""
    url = os.environ.get(env, "").strip()
    if not url:
        return None
    host = make_url(url).host
    if host not in LOOPBACK:
        raise pytest.UsageError(f"{env} must point at a loopback address, not {host!r}")
    return url


@pytest.fixture
def postgres_url() -> str:
    url = loopback_url("SEALED_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
def table_name() -> str:
    """A user table name unique to this test run (the database servers are shared)."""
    return "sec_users_" + secrets.token_hex(4)
