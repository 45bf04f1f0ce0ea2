"""Fixtures for the replica tests: a throwaway primary + streaming replica, from pgpair.py."""

from tests.replica.pgpair import pg_pair, pg_pair_session

__all__ = ["pg_pair", "pg_pair_session"]
