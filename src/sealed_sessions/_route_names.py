"""Which named routes a request will reach, before the router runs: for exempting routes by name.

Starlette's routes and mounts answer ``matches(scope)``; FastAPI 0.16x keeps an included router as
one entry, looked into through its ``_match`` (duck-typed: without it, nothing is found, and a
request is checked, never wrongly exempted).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Host, Match, Mount
from starlette.types import Scope

__all__ = ["matched_names"]


def matched_names(routes: Iterable[BaseRoute], scope: Scope, prefix: str = "") -> list[str]:
    """The names along the route the router will pick (the first full match): a named mount's or
    host's name, then ``mount:route`` inside it, as ``url_path_for`` spells them."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is not Match.FULL:
            continue
        inner = _included_route(route, scope)
        if inner is not None:  # a FastAPI include_router(): the route it will pick, its prefix applied
            route, child_scope = inner
        name = getattr(route, "name", None)
        full = prefix + name if isinstance(name, str) and name else None
        names = [full] if full else []
        if isinstance(route, Mount | Host):
            names += matched_names(route.routes, {**scope, **child_scope}, f"{full}:" if full else prefix)
        return names
    return []


def _included_route(route: BaseRoute, scope: Scope) -> tuple[BaseRoute, Scope] | None:
    """The route a FastAPI ``include_router`` entry will pick for ``scope``, or ``None`` for other routes.

    FastAPI 0.16x keeps an included router as one entry whose ``matches`` names no route; its
    ``_match`` does (duck-typed: without it, the names found are the entry's own, none, and the
    request is checked, never wrongly exempted).
    """
    match = getattr(route, "_match", None)
    if getattr(route, "original_router", None) is None or not callable(match):
        return None
    found, child_scope, inner, _context = match(scope)
    if found is not Match.FULL or inner is None:
        return None
    deeper = _included_route(inner, scope)
    return deeper if deeper is not None else (inner, child_scope)
