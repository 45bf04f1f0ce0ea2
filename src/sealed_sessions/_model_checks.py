"""What the revocation check needs of a user model, checked once at startup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, inspect

from ._errors import ConfigurationError

__all__ = ["active_condition", "python_type"]


def active_condition(model: type[Any], name: str | None) -> ColumnElement[bool] | None:
    """The SQL condition "this user may log in", or ``None`` for none.

    A Python ``@property`` cannot run inside the one query: refusing it at startup beats silently
    letting disabled users in.
    """
    if name is None:
        return None
    if name in inspect(model).all_orm_descriptors:  # a mapped column or a hybrid property
        condition: ColumnElement[bool] = getattr(model, name)
        return condition
    if hasattr(model, name):
        raise ConfigurationError(
            f"{model.__name__}.{name} is not a mapped column, so the one-query check cannot use it: map it "
            "(a Boolean column or a hybrid_property), name another with active_attribute=..., or pass "
            "active_attribute=None to let inactive users in"
        )
    if name != "is_active":
        raise ConfigurationError(f"{model.__name__} has no attribute {name!r} (active_attribute)")
    return None


def python_type(column: Any) -> type[Any] | None:
    try:
        python_type: type[Any] = column.type.python_type
    except NotImplementedError:
        return None
    return python_type
