"""The public surface: exactly these names, each documented, and a core that imports without FastAPI or SQLAlchemy."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import types
import typing

import pytest

import sealed_sessions
import sealed_sessions.testing

PUBLIC = [
    "AuthEvent",
    "AuthEvents",
    "CSRFError",
    "CSRFMiddleware",
    "CSRFReason",
    "ClientSessionsCookie",
    "ConfigurationError",
    "EventKind",
    "FlashMessage",
    "InvalidCookie",
    "KeyInput",
    "KeyRing",
    "KeyUsage",
    "LegacyCookie",
    "LegacySession",
    "Opened",
    "Reason",
    "SealedSessionsError",
    "Sealer",
    "Session",
    "SessionDataError",
    "SessionMiddleware",
    "SessionSchema",
    "SessionTooLarge",
    "StarletteCookie",
    "TokenRefusal",
    "TokenRefused",
    "__version__",
    "csrf_field",
    "csrf_token",
    "flash",
    "generate_key",
    "get_flashed_messages",
    "prometheus_collector",
    "rotate_csrf_token",
]
ERRORS = [
    "CSRFError",
    "ConfigurationError",
    "InvalidCookie",
    "SealedSessionsError",
    "SessionDataError",
    "SessionTooLarge",
    "TokenRefused",
]
TESTING_PUBLIC = ["UnsealedCookie", "seal", "unseal"]
SUBPACKAGES = {"testing", "fastapi", "sqlalchemy", "typed"}


def test_all_is_exactly_the_curated_sorted_list() -> None:
    """sealed_sessions.__all__ is this explicit list, sorted, and the testing module's likewise."""
    assert sealed_sessions.__all__ == PUBLIC
    assert sorted(PUBLIC) == PUBLIC
    assert sealed_sessions.testing.__all__ == TESTING_PUBLIC


def test_star_import_gives_exactly_all() -> None:
    """`from sealed_sessions import *` binds exactly the names in __all__."""
    namespace: dict[str, object] = {}
    exec("from sealed_sessions import *", namespace)  # noqa: S102 - a fixed statement, the point of the test
    assert sorted(k for k in namespace if k != "__builtins__") == PUBLIC


@pytest.mark.parametrize("name", [n for n in PUBLIC if n not in ("__version__", "KeyInput")])
def test_every_public_object_has_its_own_docstring(name: str) -> None:
    """Each public class and function is importable and carries a docstring of its own, not an inherited one."""
    obj = getattr(sealed_sessions, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj)
    own_doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    assert (own_doc or "").strip()
    assert obj.__module__.startswith("sealed_sessions.")


@pytest.mark.parametrize("name", TESTING_PUBLIC)
def test_testing_helpers_are_documented(name: str) -> None:
    """Each name in sealed_sessions.testing is documented."""
    assert (getattr(sealed_sessions.testing, name).__doc__ or "").strip()


def test_version_matches_the_distribution() -> None:
    """__version__ is the installed distribution's version."""
    assert sealed_sessions.__version__ == importlib.metadata.version("sealed-sessions")


def test_key_input_is_a_real_type_alias() -> None:
    """KeyInput is a union usable at run time, and annotations using it resolve with get_type_hints."""
    assert isinstance(sealed_sessions.KeyInput, types.UnionType)
    assert {str, bytes, sealed_sessions.KeyRing} <= set(typing.get_args(sealed_sessions.KeyInput))
    for function in (sealed_sessions.testing.seal, sealed_sessions.testing.unseal, sealed_sessions.SessionMiddleware):
        target = function.__init__ if inspect.isclass(function) else function
        assert typing.get_type_hints(target)["secret_key"] == sealed_sessions.KeyInput


def test_nothing_private_leaks() -> None:
    """Every public-looking attribute of the package is in __all__ or is a sub-package; no private name is exported."""
    public_attrs = {n for n in dir(sealed_sessions) if not n.startswith("_")}
    assert public_attrs - set(PUBLIC) <= SUBPACKAGES
    assert [n for n in PUBLIC if n.startswith("_")] == ["__version__"]
    assert not any(isinstance(getattr(sealed_sessions, n), types.ModuleType) for n in PUBLIC)


def test_error_tree_has_one_root() -> None:
    """Every exported exception descends from SealedSessionsError."""
    exported = [getattr(sealed_sessions, n) for n in PUBLIC]
    errors = [e for e in exported if isinstance(e, type) and issubclass(e, BaseException)]
    assert sorted(e.__name__ for e in errors) == ERRORS
    assert all(issubclass(e, sealed_sessions.SealedSessionsError) for e in errors)


def test_errors_are_also_the_builtin_errors_they_refine() -> None:
    """ConfigurationError is a ValueError and SessionDataError a TypeError, so plain ``except`` clauses still match."""
    assert issubclass(sealed_sessions.ConfigurationError, ValueError)
    assert issubclass(sealed_sessions.SessionDataError, TypeError)


BLOCKED_IMPORT = """
import sys
for name in ("fastapi", "sqlalchemy", "pydantic", "aiosqlite", "asyncpg", "aiomysql", "asyncmy", "httpx"):
    sys.modules[name] = None  # any import of these now raises ImportError
import sealed_sessions
import sealed_sessions.testing
import sealed_sessions._cli
key = sealed_sessions.generate_key()
value = sealed_sessions.testing.seal(key, {"ok": True})
assert sealed_sessions.testing.unseal(key, value).data == {"ok": True}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("fastapi", "sqlalchemy", "pydantic", "httpx"))
assert all(sys.modules[m] is None for m in loaded), loaded
print("core imported")
"""


def test_core_imports_without_fastapi_or_sqlalchemy() -> None:
    """`import sealed_sessions` and its testing module work when FastAPI, SQLAlchemy and drivers cannot be imported."""
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "core imported"


def test_blocking_really_blocks() -> None:
    """The blocking trick used above does make `import fastapi` fail, so the previous test can fail."""
    code = "import sys\nsys.modules['fastapi'] = None\nimport fastapi\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr
