"""Fixtures for the security suites: a PostgreSQL URL (skip when unset) and unique table names."""

from __future__ import annotations

import secrets

import pytest

from tests.helpers import loopback_url


@pytest.fixture
def postgres_url() -> str:
    """The loopback PostgreSQL named by SEALED_TEST_POSTGRES_URL; the test skips when it is unset."""
    url = loopback_url("SEALED_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture
def table_name() -> str:
    """A user table name unique to this test run (the database servers are shared)."""
    return "sec_users_" + secrets.token_hex(4)
