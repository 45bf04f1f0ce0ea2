"""Typed sessions: the session's keys declared once, as a pydantic model, a dataclass or a TypedDict.

::

    cart_session = TypedSession(Cart)  # class Cart(BaseModel): items: list[str] = []
    app.add_middleware(SessionMiddleware, secret_key=..., schema=cart_session)
    cart = cart_session(request)       # a Cart, to the type checker too
    cart.items.append("apple")         # saved when the response starts
    cart.currency = 3                  # pydantic.ValidationError, at once

Only the declared keys are read, validated and written; the others (``_auth_*``, ``_flashes``,
the application's own) are never touched. Declared names must not start with ``_`` and need
defaults (a new session is empty). Reading is pydantic's strict mode on the JSON: a value must
already be the JSON of its type as the view writes it (an ISO string is a ``datetime``, ``"3"``
is no ``int``), so data sealed under an older schema is recognised, never half converted.
Assignments are validated in pydantic's default (lax) Python mode, as the constructor would.

:meth:`TypedSession.check` (``SessionMiddleware(schema=typed)``) runs when a cookie opens.
``migrate`` sees every cookie's data first (a renamed key whose new name has a default is never
a misfit) and returns it as it is (the same object), a new dict (resealed) or ``None``. Data
that then fits is used; otherwise the whole session is empty, login included, and logged with
reason ``schema``. Without ``schema=``, the first ``typed(request)`` checks instead and a misfit
drops the declared keys only. A cookie's content never makes ``typed(...)`` raise.

The view is built once per request (mix no ``request.session[...]`` writes of the same keys into
it), and again after ``session.reset()`` (login): the earlier one is then never saved. When the
response starts, the fields it changed, nested changes too, are written back as JSON-mode values
and must fit the schema again, or :class:`~sealed_sessions.SessionDataError` names the field. An
unchanged view writes nothing. A WebSocket's view is read-only.

A model's or dataclass's view is a generated subclass that validates assignments:
``isinstance(view, Cart)`` holds, ``view == Cart()`` does not (compare ``model_dump()``, or give
the model ``validate_assignment=True`` and the view is a plain ``Cart``). A TypedDict's view is a
``dict`` checking ``view[key] = value`` at once and ``update()`` when the response starts; on
Python 3.11 it must be a ``typing_extensions.TypedDict`` (pydantic's rule).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from functools import partial
from inspect import Parameter, Signature
from typing import Any, Generic, TypeAlias, TypeVar, cast

from pydantic import BaseModel, ConfigDict, RootModel, TypeAdapter, ValidationError
from pydantic.errors import PydanticUndefinedAnnotation, PydanticUserError
from pydantic_core import PydanticSerializationError
from starlette.requests import HTTPConnection
from typing_extensions import is_typeddict

from ._errors import ConfigurationError, Reason, SessionDataError
from ._payload import dump_data
from ._session import Session

__all__ = ["TypedSession"]

T = TypeVar("T")
_Migrate: TypeAlias = Callable[[dict[str, Any]], dict[str, Any] | None]
_logger = logging.getLogger("sealed_sessions")
_MISSING: Any = object()
_VIEWS = "_typed_views"
"""The attribute of a :class:`Session` holding each :class:`TypedSession`'s view for this request."""


class TypedSession(Generic[T]):
    """The typed view of a session's declared keys (see the module's documentation).

    ``model``: a pydantic ``BaseModel`` subclass, a dataclass (stdlib or pydantic) or a TypedDict;
    :class:`~sealed_sessions.ConfigurationError` if it cannot be used. ``migrate(data)``: runs on
    every cookie, already migrated ones too, so it must be cheap and return ``data`` itself when
    there is nothing to do; never change ``data`` in place. ``scope_key``: a stacked middleware's.
    Call the instance with a request, a WebSocket or a :class:`~sealed_sessions.Session`; in
    FastAPI, depend on :meth:`dependency`.
    """

    model: type[T]
    """The model as given."""
    keys: tuple[str, ...]
    """The session keys the model declares, in order: the only ones validated, read and written."""
    migrate: _Migrate | None
    """The hook that converts data sealed under an older schema, or ``None``."""
    scope_key: str
    """Where the session is in the ASGI scope (the middleware's ``scope_key``)."""
    __signature__: Signature
    """What FastAPI sees: one ``HTTPConnection`` parameter, which it fills with the request."""

    def __init__(self, model: type[T], *, migrate: _Migrate | None = None, scope_key: str = "session") -> None:
        name = getattr(model, "__qualname__", repr(model))
        try:
            view_type, self.keys = _view_type(model)
            self._adapter: TypeAdapter[Any] = TypeAdapter(view_type)
            self._adapter.validate_json(b"{}", strict=True)  # a new session is empty: the defaults must fit
        except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
            raise ConfigurationError(f"TypedSession({name}): pydantic cannot use this model: {exc}") from None
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            raise ConfigurationError(
                f"TypedSession({name}): {fields or 'the model'} must have a default, because a new "
                "session is empty (TypedDict: total=False or NotRequired[...])"
            ) from None
        reserved = [key for key in self.keys if key.startswith("_")]
        if reserved:
            raise ConfigurationError(
                f"TypedSession({name}): {', '.join(reserved)}: session keys starting with '_' belong to "
                "the library's own layers (_auth_*, _flashes); rename the field"
            )
        self.model = model
        self.migrate = migrate
        self.scope_key = scope_key
        # FastAPI reads a dependency's parameters with inspect.signature, which returns
        # __signature__ when an object has one: it then passes the request as `connection`.
        self.__signature__ = Signature(
            [Parameter("connection", Parameter.POSITIONAL_OR_KEYWORD, annotation=HTTPConnection)]
        )

    async def dependency(self, connection: HTTPConnection) -> T:
        """The view, for FastAPI: ``Annotated[Cart, Depends(cart_session.dependency)]``.

        ``Depends(cart_session)`` works too, but FastAPI runs a plain callable in its thread pool,
        which costs more than the rest of a small request; this coroutine runs on the event loop.
        """
        return self(connection)

    def check(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """``migrate(data)`` (or ``data`` without a hook) if its declared keys fit, else ``None``.

        What ``SessionMiddleware(schema=...)`` calls when a cookie opens. Never raises: an exception
        from ``migrate`` refuses the cookie and is logged by its class only (data stays out of logs).
        """
        fitted = self._fit(data)
        return None if fitted is None else fitted[0]

    def __call__(self, connection: HTTPConnection | Session) -> T:
        """The typed view of this request's session: one object per request, a new one after ``session.reset()``."""
        session = connection if isinstance(connection, Session) else Session.of(connection, self.scope_key)
        session.mark_accessed()
        views: dict[TypedSession[Any], tuple[Any, int]] = vars(session).setdefault(_VIEWS, {})
        cached = views.get(self)
        if cached is None or cached[1] != session.generation:  # a reset (login) or clear (logout) detaches it
            view = self._open(session)
            cached = views[self] = (view, session.generation)
            session.add_finisher(partial(self._save, session, view, self._dump(view), session.generation))
        return cast(T, cached[0])

    # -- reading --------------------------------------------------------------------------------

    def _parse(self, data: Mapping[str, Any]) -> Any:
        """The validated view of ``data``'s declared keys, or ``_MISSING`` when they do not fit."""
        subset = {key: data[key] for key in self.keys if key in data}
        try:
            return self._adapter.validate_json(dump_data(subset), strict=True, by_alias=False, by_name=True)
        except (ValidationError, SessionDataError):
            return _MISSING

    def _fit(self, data: dict[str, Any]) -> tuple[dict[str, Any], Any] | None:
        """``(data to use, its view)``: what ``migrate`` made of ``data`` (or ``data``), if it fits."""
        if self.migrate is not None:
            try:
                migrated = self.migrate(data)
            except Exception as exc:  # a failing hook must not lock the browser out with a 500 on every request
                _logger.error(  # no traceback: its message could quote session data
                    "the migrate hook of TypedSession(%s) raised %s: the cookie is refused",
                    self.model.__qualname__,
                    type(exc).__name__,
                    extra={"reason": Reason.SCHEMA.value},
                )
                return None
            if not isinstance(migrated, dict):
                return None
            data = migrated
        parsed = self._parse(data)
        return None if parsed is _MISSING else (data, parsed)

    def _open(self, session: Session) -> Any:
        """A new view of ``session`` (checking it as the middleware's ``schema=`` would)."""
        current = dict(dict.items(session))
        fitted = self._fit(current)
        if fitted is None:
            for key in self.keys:
                session.pop(key, None)
            _logger.info(
                "session data does not fit TypedSession(%s): its keys start from the defaults",
                self.model.__qualname__,
                extra={"reason": Reason.SCHEMA.value},
            )
            view = self._parse({})
        else:
            data, view = fitted
            if data is not current:  # migrated
                session.clear()
                session.update(data)
        return _DictView(view, self) if isinstance(view, dict) else view

    # -- writing --------------------------------------------------------------------------------

    def _dump(self, view: Any) -> dict[str, Any]:
        """The view's declared fields as JSON-mode values; :class:`SessionDataError` names one that is not JSON."""
        try:
            return cast(dict[str, Any], self._adapter.dump_python(view, mode="json", by_alias=False, warnings=False))
        except PydanticSerializationError:
            for key in self.keys:
                try:
                    self._adapter.dump_python(view, mode="json", include={key}, warnings=False)
                except PydanticSerializationError:
                    raise SessionDataError(f"session[{key!r}] cannot be stored as JSON") from None
            raise SessionDataError(f"a {self.model.__qualname__} view cannot be stored as JSON") from None

    def _save(self, session: Session, view: Any, baseline: dict[str, Any], generation: int) -> None:
        """Write the fields the view changed since ``baseline`` into ``session`` (the finisher)."""
        if session.generation != generation:  # made before a reset or clear: nothing from then survives
            return
        dumped = self._dump(view)
        changed = [key for key in self.keys if not _same(dumped.get(key, _MISSING), baseline.get(key, _MISSING))]
        if not changed:
            return
        try:  # what is sealed must open again: the same check as the next request's
            self._adapter.validate_json(dump_data(dumped), strict=True, by_alias=False, by_name=True)
        except ValidationError as exc:
            # The error type, not pydantic's message: a custom validator's message may quote the value.
            problems = "; ".join(f"session[{e['loc'][0]!r}]: {e['type']}" for e in exc.errors() if e["loc"])
            raise SessionDataError(
                f"the {self.model.__qualname__} view no longer fits its schema: {problems}"
            ) from None
        for key in changed:
            if key in dumped:
                session[key] = dumped[key]
            else:  # a TypedDict's optional key was deleted
                session.pop(key, None)


class _DictView(dict[str, Any]):
    """A TypedDict's view: ``view[key] = value`` is validated at once, for declared keys only."""

    __slots__ = ("_owner",)

    def __init__(self, data: dict[str, Any], owner: TypedSession[Any]) -> None:
        super().__init__(data)
        self._owner = owner

    def __setitem__(self, key: str, value: Any) -> None:
        owner = self._owner
        if key not in owner.keys:
            raise KeyError(f"{key!r} is not a key of {owner.model.__qualname__}: store it in the session itself")
        validated = owner._adapter.validate_python({**self, key: value}, by_alias=False, by_name=True)
        super().__setitem__(key, validated[key])


def _view_type(model: type[Any]) -> tuple[type[Any], tuple[str, ...]]:
    """The class views of ``model`` are made of (validating assignments), and its declared keys."""
    if not isinstance(model, type):
        raise ConfigurationError(f"TypedSession needs a class, got {model!r}")
    same_names = {"__module__": model.__module__, "__qualname__": model.__qualname__, "__doc__": model.__doc__}
    if issubclass(model, BaseModel) and not issubclass(model, RootModel) and model.model_fields:
        keys = tuple(model.model_fields)
        if model.model_config.get("validate_assignment") or model.model_config.get("frozen"):
            return model, keys
        config = ConfigDict(validate_assignment=True)
        return type(model.__name__, (model,), {**same_names, "model_config": config}), keys
    if dataclasses.is_dataclass(model):
        keys = tuple(field.name for field in dataclasses.fields(model))
        if model.__dataclass_params__.frozen:  # type: ignore[attr-defined]  # set by @dataclass
            return model, keys
        validator = TypeAdapter(model).validator

        def __setattr__(self: Any, name: str, value: Any) -> None:
            if name in keys:
                validator.validate_assignment(self, name, value)
            else:
                model.__setattr__(self, name, value)

        # No __slots__ of its own: the same layout as the model, whether it has slots or not.
        return type(model.__name__, (model,), {**same_names, "__slots__": (), "__setattr__": __setattr__}), keys
    if is_typeddict(model):
        return model, tuple(model.__annotations__)
    raise ConfigurationError(
        f"TypedSession needs a pydantic BaseModel subclass with fields, a dataclass or a TypedDict, "
        f"not {model.__qualname__}"
    )


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1``, ``1.0`` and ``True`` differ, as they would in the cookie."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(value, b[key]) for key, value in a.items())
    return bool(a == b)
