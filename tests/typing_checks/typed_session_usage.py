"""User code with typed sessions, as the README writes it: mypy --strict checks it, a test runs it.

The wrong assignment near the end is a type error on purpose: with ``warn_unused_ignores`` (part
of ``--strict``), its ``type: ignore[assignment]`` becomes an error of its own the day the view's
attributes stop being typed, so tests/test_typed.py fails then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from typing_extensions import TypedDict

from sealed_sessions import SessionMiddleware, generate_key
from sealed_sessions.typed import TypedSession

SECRET_KEY = generate_key()


class Cart(BaseModel):
    items: list[str] = []
    currency: str = "EUR"


@dataclass
class Prefs:
    theme: str = "light"


class Visits(TypedDict, total=False):
    pages: list[str]


cart_session = TypedSession(Cart)
prefs_session = TypedSession(Prefs)
visits_session = TypedSession(Visits)
CartView = Annotated[Cart, Depends(cart_session.dependency)]

app = FastAPI()
app.add_middleware(SessionMiddleware, secret_key=SECRET_KEY, schema=cart_session)


@app.post("/cart")
async def add_item(cart: CartView, item: str) -> list[str]:
    cart.items.append(item)
    return cart.items


@app.post("/theme")
async def set_theme(request: Request, theme: str) -> dict[str, str | list[str]]:
    prefs = prefs_session(request)
    prefs.theme = theme
    visits = visits_session(request)
    visits["pages"] = [*visits.get("pages", []), "/theme"]
    return {"theme": prefs.theme, "pages": visits["pages"]}


@app.post("/wrong")
async def wrong(request: Request) -> str:
    cart = cart_session(request)
    try:
        cart.currency = 3  # type: ignore[assignment]
    except ValidationError:
        return "refused"
    return "accepted"
