"""Column types shared by the user-token and device tables."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.types import TypeEngine

__all__ = ["exact_string"]


def exact_string(length: int) -> TypeEngine[str]:
    """``VARCHAR(length)`` compared byte for byte everywhere: a binary collation on MySQL and MariaDB.

    Their default collations ignore letter case, so a token or id differing only in case would
    match there and nowhere else.
    """
    return String(length).with_variant(String(length, collation="utf8mb4_bin"), "mysql", "mariadb")
