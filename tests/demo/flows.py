"""Driving the demo in process: the app with its lifespan run, the HTML forms with their CSRF token, cookies.

``demo_settings`` (conftest) serves HTTPS, so the cookie is :data:`COOKIE`. Registering no longer
logs in (it must not tell whether the address had an account): :func:`html_sign_up` and
:func:`api_sign_up` register and then log in, as a person would. Each login is a device of the
user (:func:`api_devices` lists them).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from examples.demo import Settings, create_app

USER = "user@example.com"
"""The account the ``demo_user`` fixture registers (with :data:`PASSWORD`)."""
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple of the seventh moon"
COOKIE = "__Host-session"
"""The demo's cookie over HTTPS (``demo_settings``); in plain-HTTP development it is ``session``."""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@asynccontextmanager
async def running(settings: Settings, clock: Callable[[], float] = time.time, **options: Any) -> AsyncIterator[FastAPI]:
    """The demo app with its lifespan run (tables created), closed afterwards; ``options`` go to ``create_app``."""
    app = create_app(settings, clock=clock, **options)
    async with LifespanManager(app):
        yield app


def client_at(app: FastAPI, host: str) -> httpx.AsyncClient:
    """An https client on ``app`` whose requests come from the client address ``host``."""
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def csrf_from(client: httpx.AsyncClient, path: str) -> str:
    """GET a page with a form and return the CSRF token its form carries."""
    response = await client.get(path)
    assert response.status_code == 200, response.text
    match = _CSRF.search(response.text)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


async def form_register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_from(client, "/register")
    return await client.post("/register", data={"csrf_token": token, "email": email, "password": password})


async def form_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_from(client, "/login")
    return await client.post("/login", data={"csrf_token": token, "email": email, "password": password})


async def html_sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    """Register through the form, then log in through the other form."""
    assert (await form_register(client, email, password)).headers["location"] == "/login?done=registered"
    assert (await form_login(client, email, password)).headers["location"] == "/profile"


async def api_sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> int:
    """Register through the API, then log in; the user's id."""
    assert (await client.post("/api/register", json={"email": email, "password": password})).status_code == 202
    response = await client.post("/api/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    user_id: int = response.json()["id"]
    return user_id


async def api_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    """Log in through the API (another device of an existing user)."""
    response = await client.post("/api/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text


async def api_devices(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The devices ``GET /api/devices`` lists for this client's user, newest first."""
    response = await client.get("/api/devices")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


async def current_device(client: httpx.AsyncClient) -> str:
    """The id of this client's own device."""
    (device,) = [d for d in await api_devices(client) if d["current"]]
    return str(device["id"])


async def profile_form(client: httpx.AsyncClient, action: str, **fields: str) -> httpx.Response:
    """Submit one of the profile page's forms, with the token the page carries."""
    token = await csrf_from(client, "/profile")
    return await client.post(action, data={"csrf_token": token, **fields})


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def is_deletion(header: str, name: str = COOKIE) -> bool:
    return header.startswith(f"{name}=") and "max-age=0" in header.lower()


def sets_session(response: httpx.Response, name: str = COOKIE) -> bool:
    """Whether the response sets a (non-deletion) session cookie."""
    return any(h.startswith(f"{name}=") and not is_deletion(h, name) for h in set_cookies(response))
