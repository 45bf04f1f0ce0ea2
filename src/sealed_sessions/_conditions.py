"""The conditions of the check's one ``SELECT``: those every session must meet, and a route's own.

::

    SELECT users.*, CASE WHEN (users.role = 'admin' AND users.tenant_id = :param_1) THEN true ELSE false END
    FROM users WHERE users.id = :uid AND users.session_token = :token [AND users.is_active]

The ``WHERE`` decides whether the session is alive: no row, and the session is dead (a 401, the
session emptied). A route's conditions (``auth.user(where=...)``) are not in the ``WHERE`` but in a
selected column, so the same statement tells a live session that fails them from a dead one: the
column is false, the answer a 403, and the session stays as it is. ``CASE WHEN`` takes only a
true condition, so a condition that is ``NULL`` (a nullable column never set) counts as false.

:func:`check_statement` builds the first part for :class:`~._revocation.RevocationCheck`;
:class:`RouteCondition` adds the column. SQL expressions are added once per statement they
extend; a callable (for values taken from the request, such as a tenant id in the path) is called
per request, and its expression costs a statement built per request (tens of microseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Boolean, ColumnElement, Select, and_, case, false, select, true
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, SQLCoreOperations
from sqlalchemy.types import NullType

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "ALLOWED",
    "Condition",
    "RouteCondition",
    "SQLCondition",
    "Where",
    "check_statement",
    "refuse_uncompilable",
    "sql_condition",
]

ALLOWED = "sealed_sessions_allowed"
"""The label of the selected column that holds a route's conditions."""

SQLCondition: TypeAlias = "SQLCoreOperations[bool | None]"
"""A boolean SQL expression: a column, a hybrid property, a comparison (``User.role == "admin"``)."""
Condition: TypeAlias = "SQLCondition | Callable[[Request], SQLCondition]"
"""A SQL condition, or a callable building one from the request (``lambda r: User.tenant_id == ...``)."""
Where: TypeAlias = "Condition | Sequence[Condition]"
"""What ``auth.user(where=...)`` takes: one condition, or several that must all hold."""


def check_statement(
    model: type[Any], key: Any, uid: Any, token: Any, active: ColumnElement[bool] | None
) -> Select[Any]:
    """``SELECT model WHERE key = uid AND model.session_token = token [AND active]``: values or bound parameters."""
    query = select(model).where(key == uid, model.session_token == token)
    return query if active is None else query.where(active)


def refuse_uncompilable(build: Callable[[], Select[Any]], model: type[Any], active_attribute: str | None) -> None:
    """Build and compile the check's statement once, so a model SQL cannot express fails at startup.

    A hybrid ``is_active`` whose class-level expression is a Python constant passes every
    attribute check and then fails each statement: without this, every request would get a 503.
    """
    try:
        build().compile()
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"the revocation check's SELECT for {model.__name__} cannot be built "
            f"({type(exc).__name__}): is {active_attribute!r} a SQL expression at class level? A hybrid "
            "property needs an @is_active.expression that returns a column or condition, not a constant"
        ) from None


def sql_condition(condition: object, where: str) -> ColumnElement[bool]:
    """``condition`` as a boolean SQL expression, or a :class:`ConfigurationError` naming ``where`` it came from.

    A Python ``bool`` is refused: it is what a plain ``@property`` (or a hybrid without an
    ``.expression``) gives at class level, and it would make the route always or never answer.
    """
    if isinstance(condition, bool):
        raise ConfigurationError(
            f"{where} gave a Python bool, not a SQL expression: is it a plain @property? Use a column, "
            "a hybrid property with a SQL expression, or a comparison such as User.role == 'admin'"
        )
    try:
        expression: ColumnElement[bool] = and_(condition)  # type: ignore[arg-type]  # checked at run time
    except ArgumentError as exc:
        raise ConfigurationError(f"{where} is not a SQL condition ({exc})") from None
    if not isinstance(expression.type, Boolean | NullType):
        raise ConfigurationError(f"{where} is a {expression.type} expression, not a boolean condition")
    return expression


class RouteCondition:
    """A route's own conditions, added to the check's ``SELECT`` as one boolean column.

    ``where`` is a SQL condition, a callable ``(request) -> condition``, or a sequence of them
    (all must hold); anything else is a :class:`ConfigurationError` here, and a callable that
    gives anything else at request time raises one then.
    """

    conditions: tuple[ColumnElement[bool], ...]
    """The SQL conditions, checked once here."""
    builders: tuple[Callable[[Request], SQLCondition], ...]
    """The callables, called per request."""

    def __init__(self, where: Where) -> None:
        given: object = where
        items = tuple(given) if isinstance(given, Sequence) and not isinstance(given, str) else (given,)
        if not items:
            raise ConfigurationError("where= needs at least one condition")
        static: list[ColumnElement[bool]] = []
        builders: list[Callable[[Request], SQLCondition]] = []
        for number, item in enumerate(items, 1):
            if callable(item):
                builders.append(item)
            else:
                static.append(sql_condition(item, f"where= condition {number}"))
        self.conditions = tuple(static)
        self.builders = tuple(builders)
        self._extended: tuple[Select[Any], Select[Any]] | None = None

    @property
    def uses_request(self) -> bool:
        """Whether a callable needs the request."""
        return bool(self.builders)

    def extend(self, query: Select[Any], request: Request | None = None) -> Select[Any]:
        """``query`` with the conditions as its last column; built once per ``query`` without callables."""
        if not self.builders:
            extended = self._extended
            if extended is None or extended[0] is not query:
                extended = self._extended = (query, self._add(query, self.conditions))
            return extended[1]
        if request is None:  # pragma: no cover - the dependency passes its request whenever it has builders
            raise ConfigurationError("a where= callable needs the request")
        built = (_bindable(sql_condition(build(request), f"where= callable {build!r}")) for build in self.builders)
        return self._add(query, (*self.conditions, *built))

    @staticmethod
    def _add(query: Select[Any], conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
        allowed = case((and_(*conditions), true()), else_=false())
        return query.add_columns(allowed.label(ALLOWED))


_INT64 = range(-(2**63), 2**63)


def _bindable(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition``, or ``false()`` when it binds an integer no database column holds (over 64 bits).

    Such a value comes from the request (``/tenants/99999999999999999999``): drivers refuse to bind
    it (a 500 on SQLite, an error taken for an outage on PostgreSQL), yet no row can match it, so
    the condition is simply false: a 403, in the same one statement.
    """
    for element in visitors.iterate(condition):
        if isinstance(element, BindParameter):
            value = element.value
            if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
                return false()
    return condition
