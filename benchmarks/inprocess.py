"""In-process measurements: sealing, opening and whole ASGI requests, without sockets.

Every group runs its competitors side by side: each round times one batch of every competitor,
in a rotated order (see :func:`benchmarks.stats.rotated_orders`), and ratios are taken per round.
Batches are sized once so each lasts about ``batch_seconds``; the garbage collector is paused
inside a batch (as ``timeit`` does) and run between batches.

What each row does is written in its ``detail`` so the report can say it.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import itsdangerous
from nacl.bindings import crypto_secretbox_easy, crypto_secretbox_open_easy
from nacl.utils import random as random_bytes
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

from sealed_sessions import KeyRing, SessionMiddleware, generate_key
from sealed_sessions._envelope import Envelope
from sealed_sessions._payload import decode, dump_data, encode

from .stats import paired_ratios, rotated_orders, summarize

__all__ = ["Case", "Group", "GroupResult", "build_groups", "run_groups"]

# A fixed key for the benchmarks (not a secret: they never ship).
KEY = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
STARLETTE_SECRET = "benchmark-secret-for-starlette-session-middleware"
SESSION_DATA: dict[str, Any] = {"user_id": 123456, "csrf": "q3Jd7Zk1vYx2Lw9Pm4Nc8Rt6", "theme": "dark"}
"""A typical small session (about 80 bytes of JSON)."""
IDLE_TIMEOUT = 3600


@dataclass
class Case:
    """One competitor: ``run(loops)`` performs ``loops`` operations and returns elapsed seconds."""

    name: str
    detail: str
    run: Callable[[int], float]


@dataclass
class Group:
    """Competitors measured against each other; ratios are against ``baseline``."""

    name: str
    title: str
    baseline: str
    cases: list[Case]


@dataclass
class GroupResult:
    name: str
    title: str
    baseline: str
    details: dict[str, str]
    samples: dict[str, list[float]] = field(default_factory=dict)
    """Seconds per operation, one value per round, per case."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        base = self.samples[self.baseline]
        for name, values in self.samples.items():
            out[name] = {
                "detail": self.details[name],
                "seconds_per_op": summarize(values).as_dict(),
                "ratio_to_baseline": summarize(paired_ratios(values, base)).as_dict(),
            }
        return out


def _timed(fn: Callable[[], object]) -> Callable[[int], float]:
    def run(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        return time.perf_counter() - start

    return run


def _timed_async(loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[None]]) -> Callable[[int], float]:
    async def batch(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            await fn()
        return time.perf_counter() - start

    def run(loops: int) -> float:
        return loop.run_until_complete(batch(loops))

    return run


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- sealing and opening ---------------------------------------------------------------------------


def _crypto_groups() -> list[Group]:
    now = int(time.time())
    envelope = Envelope(KeyRing(KEY), "session")
    data_json = dump_data(SESSION_DATA)
    plaintext = encode(data_json, now, now + 86400, now)
    raw_key = random_bytes(32)
    signer = itsdangerous.TimestampSigner(STARLETTE_SECRET)

    def nacl_seal() -> bytes:
        nonce = random_bytes(24)
        return nonce + crypto_secretbox_easy(plaintext, nonce, raw_key)

    def nacl_b64_seal() -> str:
        nonce = random_bytes(24)
        return _b64(nonce + crypto_secretbox_easy(plaintext, nonce, raw_key))

    def ours_seal() -> str:
        return envelope.seal(encode(data_json, now, now + 86400, now))

    def ours_seal_full() -> str:
        return envelope.seal(encode(dump_data(SESSION_DATA), now, now + 86400, now))

    def itsdangerous_seal() -> bytes:
        return signer.sign(base64.b64encode(plaintext))

    def starlette_seal_full() -> bytes:
        return signer.sign(base64.b64encode(json.dumps(SESSION_DATA).encode("utf-8")))

    seal = Group(
        "seal",
        "Seal a small session (about 100 bytes) into a cookie value",
        "nacl+b64",
        [
            Case("nacl", "raw nacl.bindings: random nonce + crypto_secretbox_easy, bytes out", _timed(nacl_seal)),
            Case(
                "nacl+b64", "raw nacl.bindings as above, then base64url (a cookie-safe string)", _timed(nacl_b64_seal)
            ),
            Case("ours", "sealed_sessions: payload.encode(timestamps + JSON bytes) + Envelope.seal", _timed(ours_seal)),
            Case("ours+json", "as 'ours', plus dump_data(session) as the middleware does", _timed(ours_seal_full)),
            Case(
                "itsdangerous",
                "itsdangerous TimestampSigner.sign(base64(plaintext)) (signed, not encrypted)",
                _timed(itsdangerous_seal),
            ),
            Case(
                "starlette+json",
                "what Starlette's middleware does: json.dumps + base64 + TimestampSigner.sign",
                _timed(starlette_seal_full),
            ),
        ],
    )

    nonce = random_bytes(24)
    nacl_raw = nonce + crypto_secretbox_easy(plaintext, nonce, raw_key)
    nacl_text = _b64(nacl_raw)
    ours_text = envelope.seal(plaintext)
    signed = signer.sign(base64.b64encode(plaintext))
    signed_json = signer.sign(base64.b64encode(json.dumps(SESSION_DATA).encode("utf-8")))

    def nacl_open() -> bytes:
        return crypto_secretbox_open_easy(nacl_raw[24:], nacl_raw[:24], raw_key)

    def nacl_b64_open() -> bytes:
        raw = _unb64(nacl_text)
        return crypto_secretbox_open_easy(raw[24:], raw[:24], raw_key)

    def nacl_b64_json_open() -> object:
        raw = _unb64(nacl_text)
        return json.loads(crypto_secretbox_open_easy(raw[24:], raw[:24], raw_key)[24:])

    def ours_envelope_open() -> bytes:
        return envelope.open(ours_text)[0]

    def ours_open() -> object:
        return decode(envelope.open(ours_text)[0])

    def itsdangerous_open() -> bytes:
        return base64.b64decode(signer.unsign(signed, max_age=86400))

    def starlette_open() -> object:
        return json.loads(base64.b64decode(signer.unsign(signed_json, max_age=86400)))

    open_group = Group(
        "open",
        "Open a small session cookie value",
        "nacl+b64+json",
        [
            Case("nacl", "raw nacl.bindings: crypto_secretbox_open_easy on bytes", _timed(nacl_open)),
            Case("nacl+b64", "base64url decode + crypto_secretbox_open_easy", _timed(nacl_b64_open)),
            Case(
                "nacl+b64+json",
                "base64url decode + crypto_secretbox_open_easy + json.loads (same work as ours)",
                _timed(nacl_b64_json_open),
            ),
            Case(
                "ours-envelope",
                "Envelope.open only: strict base64url, key by id, MAC check",
                _timed(ours_envelope_open),
            ),
            Case("ours", "Envelope.open + payload.decode (timestamps, json.loads, depth check)", _timed(ours_open)),
            Case("itsdangerous", "TimestampSigner.unsign(max_age) + base64 decode", _timed(itsdangerous_open)),
            Case(
                "starlette+json",
                "what Starlette's middleware does: unsign + base64 decode + json.loads",
                _timed(starlette_open),
            ),
        ],
    )
    return [seal, open_group]


def _keyring_group() -> Group:
    now = int(time.time())
    keys16 = [generate_key() for _ in range(16)]
    plaintext = encode(dump_data(SESSION_DATA), now, now + 86400, now)
    ring1 = Envelope(KeyRing(keys16[0]), "session")
    ring16 = Envelope(KeyRing(keys16), "session")
    newest = ring16.seal(plaintext)
    oldest = Envelope(KeyRing(keys16[-1]), "session").seal(plaintext)
    one = ring1.seal(plaintext)
    assert ring16.open(oldest)[1] is False  # opened with an older key, as intended

    return Group(
        "keyring",
        "Open with 1 key vs 16 keys in the ring",
        "1 key",
        [
            Case("1 key", "Envelope.open, ring of 1", _timed(lambda: ring1.open(one))),
            Case(
                "16 keys, newest",
                "Envelope.open, ring of 16, cookie sealed with the current key",
                _timed(lambda: ring16.open(newest)),
            ),
            Case(
                "16 keys, oldest",
                "Envelope.open, ring of 16, cookie sealed with the oldest key",
                _timed(lambda: ring16.open(oldest)),
            ),
        ],
    )


# -- whole requests through the ASGI stack ---------------------------------------------------------


async def _read(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        return PlainTextResponse(str(request.session.get("user_id")))
    return PlainTextResponse("123456")


async def _write(request: Request) -> PlainTextResponse:
    if "session" in request.scope:
        request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse("ok")


def starlette_app() -> Starlette:
    """The endpoint every stack wraps: ``/read`` reads one key, ``/write`` increments a counter."""
    return Starlette(routes=[Route("/read", _read), Route("/write", _write)])


def _scope(path: str, cookie: str | None) -> Scope:
    headers = [(b"host", b"testserver"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "state": {},
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _request_runner(
    loop: asyncio.AbstractEventLoop, app: ASGIApp, path: str, cookie: str | None, expect_set_cookie: bool
) -> Callable[[int], float]:
    """A batch of requests straight into the ASGI app; checks once that the stack behaves as named."""
    base = _scope(path, cookie)
    seen: list[Message] = []

    async def record(message: Message) -> None:
        seen.append(message)

    async def check() -> None:
        await app(dict(base), _receive, record)
        start = seen[0]
        assert start["status"] == 200, start
        has_cookie = any(k == b"set-cookie" for k, _ in start.get("headers", []))
        assert has_cookie == expect_set_cookie, (path, cookie, start)

    loop.run_until_complete(check())

    async def send(message: Message) -> None:
        return None

    async def one() -> None:
        await app(dict(base), _receive, send)

    return _timed_async(loop, one)


def starlette_cookie(data: dict[str, Any]) -> str:
    signer = itsdangerous.TimestampSigner(STARLETTE_SECRET)
    return "session=" + signer.sign(base64.b64encode(json.dumps(data).encode("utf-8"))).decode("ascii")


def ours_cookie(data: dict[str, Any], *, last_active_ago: int = 0, key: str = KEY) -> str:
    now = int(time.time())
    value = Envelope(KeyRing(key), "session").seal(
        encode(dump_data(data), now, now + 14 * 86400, now - last_active_ago)
    )
    return "session=" + value


def _asgi_group(loop: asyncio.AbstractEventLoop) -> Group:
    bare = starlette_app()
    starlette = StarletteSessionMiddleware(starlette_app(), secret_key=STARLETTE_SECRET)
    ours = SessionMiddleware(starlette_app(), secret_key=KEY)
    ours_idle = SessionMiddleware(starlette_app(), secret_key=KEY, idle_timeout=IDLE_TIMEOUT)
    s_cookie = starlette_cookie(SESSION_DATA)
    o_cookie = ours_cookie(SESSION_DATA)
    # Last sealed 1000 s ago with a one-hour idle timeout: past a quarter of the window, so due.
    o_stale = ours_cookie(SESSION_DATA, last_active_ago=1000)

    def case(name: str, detail: str, app: ASGIApp, path: str, cookie: str | None, sets: bool) -> Case:
        return Case(name, detail, _request_runner(loop, app, path, cookie, sets))

    return Group(
        "asgi",
        "One GET through the ASGI stack, called directly (no sockets, no HTTP parsing)",
        "none read",
        [
            case("none read", "Starlette app, no session middleware, /read", bare, "/read", None, False),
            case(
                "starlette read",
                "Starlette's SessionMiddleware, valid cookie, endpoint reads one key",
                starlette,
                "/read",
                s_cookie,
                False,
            ),
            case(
                "ours read",
                "sealed_sessions.SessionMiddleware, valid cookie, endpoint reads one key",
                ours,
                "/read",
                o_cookie,
                False,
            ),
            case(
                "ours renewal due",
                "ours with idle_timeout, cookie past 1/4 of the idle window: reseals",
                ours_idle,
                "/read",
                o_stale,
                True,
            ),
            case("none write", "Starlette app, no session middleware, /write", bare, "/write", None, False),
            case(
                "starlette write",
                "Starlette's SessionMiddleware, valid cookie, endpoint writes a counter",
                starlette,
                "/write",
                s_cookie,
                True,
            ),
            case(
                "ours write",
                "ours, valid cookie, endpoint writes a counter on every request",
                ours,
                "/write",
                o_cookie,
                True,
            ),
        ],
    )


# -- running ---------------------------------------------------------------------------------------


def build_groups(loop: asyncio.AbstractEventLoop) -> list[Group]:
    return [*_crypto_groups(), _keyring_group(), _asgi_group(loop)]


def _calibrate(case: Case, batch_seconds: float) -> int:
    loops = 1
    while True:
        elapsed = case.run(loops)
        if elapsed >= batch_seconds / 4 or loops >= 1 << 24:
            return max(1, int(loops * batch_seconds / max(elapsed, 1e-9)))
        loops *= 4


def run_groups(
    groups: list[Group],
    *,
    rounds: int,
    batch_seconds: float,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[GroupResult]:
    """Run every group's cases for ``rounds`` rounds in rotated order; seconds per op per round."""
    results: list[GroupResult] = []
    for group in groups:
        by_name = {c.name: c for c in group.cases}
        loops = {c.name: _calibrate(c, batch_seconds) for c in group.cases}
        result = GroupResult(group.name, group.title, group.baseline, {c.name: c.detail for c in group.cases})
        result.samples = {c.name: [] for c in group.cases}
        for r, order in enumerate(rotated_orders([c.name for c in group.cases], rounds)):
            progress(f"in-process {group.name}: round {r + 1}/{rounds}")
            for name in order:
                gc.collect()
                gc.disable()
                try:
                    elapsed = by_name[name].run(loops[name])
                finally:
                    gc.enable()
                result.samples[name].append(elapsed / loops[name])
        results.append(result)
    return results


def asgi_overhead_ratios(result: GroupResult, ours: str, theirs: str, bare: str) -> list[float]:
    """Per round: (ours - bare) / (theirs - bare), the share of Starlette's added cost that ours adds."""
    s = result.samples
    out = []
    for o, t, b in zip(s[ours], s[theirs], s[bare], strict=True):
        if t - b > 0:
            out.append((o - b) / (t - b))
    return out


def run(*, rounds: int, batch_seconds: float, progress: Callable[[str], None]) -> list[GroupResult]:
    loop = asyncio.new_event_loop()
    try:
        return run_groups(build_groups(loop), rounds=rounds, batch_seconds=batch_seconds, progress=progress)
    finally:
        loop.close()
