#!/usr/bin/env python
"""Atheris fuzz target for the cookie opener: Sealer.open, alone and behind the middleware's Cookie parsing.

The property: whatever bytes arrive as a cookie (or as a whole Cookie header), the opener either
raises :class:`sealed_sessions.InvalidCookie` or returns a session that is byte for byte one of the
valid cookies we sealed as seeds. Any other exception, or any *other* value that opens (a forgery,
or a second encoding of a real cookie), is a crash.

Run it for a given time with one command (libFuzzer flags pass through)::

    .venv/bin/python fuzz/fuzz_cookie.py -max_total_time=60

Without a corpus directory on the command line, ``$TMPDIR/sealed-fuzz-corpus`` is used; an empty
corpus directory (that one, or the first one given) is seeded with freshly sealed
valid cookies, every file in ``fuzz/regressions/``, and the cookie values of
``tests/fixtures/cookies_v1.json`` when that file exists. A crash is written where libFuzzer says
(``-artifact_prefix``, by default ``$TMPDIR/sealed-fuzz-crashes/``): copy it into ``fuzz/regressions/`` so the
normal test suite replays it forever (tests/security/test_fuzz.py).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REGRESSIONS = HERE / "regressions"
FIXTURES = ROOT / "tests" / "fixtures" / "cookies_v1.json"

# A copy of KEY_A and KEY_B from tests/helpers.py (this script runs on its own, without the test tree
# on its path, so it cannot import them): the current one seals, both open.
KEYS = ["v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ", "Qk3zT0Yc2sR8wW5eL1aN6hJ9uI4oP7gF2dS5aZ8xC1v"]
# The name of the corpus's cookies (format version 1, release 0.1's default name), so that they
# open here too and both formats are fuzzed; the seeds below are sealed in the current format.
COOKIE_NAME = "session"
NOW = 1_800_000_000
MAX_AGE = 14 * 24 * 60 * 60
IDLE_TIMEOUT = 3600
_NAME_EQ = COOKIE_NAME.encode() + b"="


class Opener:
    """What the middleware does with a cookie value: :meth:`sealed_sessions.Sealer.open` at a fixed time."""

    def __init__(self) -> None:
        from sealed_sessions import InvalidCookie, Sealer

        self.invalid = InvalidCookie
        self.sealer = Sealer(KEYS, COOKIE_NAME, max_age=MAX_AGE, idle_timeout=IDLE_TIMEOUT)
        self.old_sealer = Sealer(KEYS[1], COOKIE_NAME, max_age=MAX_AGE, idle_timeout=IDLE_TIMEOUT)

    def open(self, value: str) -> dict[str, object]:
        """The session data, or :class:`InvalidCookie`."""
        return self.sealer.open(value, NOW).data

    def seeds(self) -> list[str]:
        """Valid cookies: current key, older key, small, unicode, nested, near the size limit."""
        datas: list[dict[str, object]] = [
            {},
            {"user_id": 1, "token": "x" * 22},
            {"unicode": "h\u00e9llo \U0001f600", "n": [1, 2.5, None, True, {"a": []}]},
            {"big": "y" * 2500},
        ]
        out = []
        for data in datas:
            for sealer in (self.sealer, self.old_sealer):
                out.append(sealer.seal(data, issued_at=NOW - 10, expires_at=NOW - 10 + MAX_AGE, last_active=NOW - 10))
        return out


class HeaderOpener:
    """A whole Cookie header through the real middleware, driven without an event loop.

    The inner app never suspends, so one ``send(None)`` runs the request to its end.
    """

    def __init__(self) -> None:
        from sealed_sessions import SessionMiddleware

        self.seen: list[object] = []

        async def app(scope: dict[str, object], receive: object, send: object) -> None:
            self.seen.append(scope["session"])

        self.middleware = SessionMiddleware(
            app, KEYS, COOKIE_NAME, max_age=MAX_AGE, idle_timeout=IDLE_TIMEOUT, clock=lambda: NOW
        )

    def open(self, header: bytes) -> object:
        """The ``Opened`` the middleware found in ``header``, or ``None``."""
        self.seen.clear()
        scope = {"type": "http", "headers": [(b"cookie", header)]}
        coroutine = self.middleware(scope, None, None)  # type: ignore[arg-type]
        try:
            coroutine.send(None)
        except StopIteration:
            pass
        else:  # pragma: no cover - the app above never suspends
            coroutine.close()
            raise AssertionError("the middleware suspended")
        (session,) = self.seen
        return getattr(session, "opened", None)


def fixture_cookies(path: Path = FIXTURES) -> Iterator[str]:
    """Every string in the fixture file that looks like a sealed cookie (long base64url)."""
    if not path.exists():
        return
    stack: list[object] = [json.loads(path.read_text(encoding="utf-8"))]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 60 and re.fullmatch(r"[A-Za-z0-9_-]+", item):
            yield item


class Target:
    """The fuzz property, usable without atheris (the regression replay in the test suite)."""

    def __init__(self, opener: Opener | None = None) -> None:
        self.opener = opener or Opener()
        self.header_opener = HeaderOpener()
        self.seeds = self.opener.seeds()
        self.valid = set(self.seeds) | set(fixture_cookies())  # genuine cookies may open

    def check(self, data: bytes) -> None:
        """Raise AssertionError (a crash) if ``data`` breaks the property; InvalidCookie is fine."""
        value = data.decode("latin-1")
        try:
            self.opener.open(value)
        except self.opener.invalid:
            pass
        else:
            if value not in self.valid:
                raise AssertionError(f"an unknown value opened: {len(value)} characters")
        # The same bytes as a whole Cookie header: whatever opens must be one of the genuine cookies.
        if self.header_opener.open(data) is not None and not any(v.encode() in data for v in self.valid):
            raise AssertionError(f"an unknown value opened from a Cookie header of {len(data)} bytes")


def write_seed_corpus(directory: Path, target: Target) -> None:
    for i, value in enumerate(sorted(target.valid)):
        (directory / f"seed-{i}").write_bytes(value.encode("ascii"))
        (directory / f"header-{i}").write_bytes(b"a=b; " + _NAME_EQ + value.encode("ascii") + b"; c=d")
    for i, value in enumerate(fixture_cookies()):
        (directory / f"fixture-{i}").write_bytes(value.encode("ascii"))
    for path in sorted(REGRESSIONS.glob("*")):
        if path.is_file() and not path.name.startswith("."):
            (directory / f"regression-{path.name}").write_bytes(path.read_bytes())


def main(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        target = Target()
    args = list(argv)
    scratch = Path(tempfile.gettempdir())
    corpora = [Path(a) for a in args[1:] if not a.startswith("-")]
    if not corpora:
        corpus = scratch / "sealed-fuzz-corpus"  # rebuilt from the seeds on every run
        shutil.rmtree(corpus, ignore_errors=True)
        corpus.mkdir()
        args.append(str(corpus))
        corpora = [corpus]
    if corpora[0].is_dir() and not any(corpora[0].iterdir()):
        write_seed_corpus(corpora[0], target)
    if not any(a.startswith("-artifact_prefix=") for a in args):
        crashes = scratch / "sealed-fuzz-crashes"  # kept: copy a crash into fuzz/regressions/
        crashes.mkdir(exist_ok=True)
        args.insert(1, f"-artifact_prefix={crashes}/")
    atheris.Setup(args, target.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
