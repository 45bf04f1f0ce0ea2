"""The quick start (examples/quickstart.py, the README's FastAPI example) runs: two devices, revoke the other."""

import importlib
import sys
from collections.abc import AsyncIterator
from types import ModuleType

import pytest
from asgi_lifespan import LifespanManager

from tests.helpers import COOKIE, KEY_A, ClientFactory


@pytest.fixture
async def example(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModuleType]:
    """A fresh import of the example with a test key and an in-memory database."""
    monkeypatch.setenv("SESSION_KEY", KEY_A)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    name = "examples.quickstart"
    sys.modules.pop(name, None)
    module = importlib.import_module(name)
    yield module
    await module.engine.dispose()
    sys.modules.pop(name, None)


async def test_readme_example_login_and_revoke_other_devices(
    example: ModuleType, client_factory: ClientFactory
) -> None:
    """Two devices log in; 'log out everywhere else' keeps the first and refuses the second."""
    async with LifespanManager(example.app) as manager:
        async with example.Database() as db:
            db.add(example.User(email="ada@example.com"))
            await db.commit()
        async with client_factory(manager.app) as laptop, client_factory(manager.app) as phone:
            for device in (laptop, phone):
                assert (await device.post("/login", params={"email": "ada@example.com"})).json() == {"id": 1}
                assert (await device.get("/me")).json() == {"email": "ada@example.com"}
            assert (await laptop.post("/logout-everywhere-else")).json() == {"ok": True}
            assert (await laptop.get("/me")).status_code == 200
            assert (await phone.get("/me")).status_code == 401
            assert COOKIE not in phone.cookies  # the refused device's cookie was deleted
