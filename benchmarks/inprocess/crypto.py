"""Sealing and opening a cookie value: ours (the public :class:`Sealer`) against the raw parts.

The raw competitors seal as many bytes as ours does (24 bytes of timestamps, then the JSON) with
``nacl.bindings`` directly, so the ratio is the price of everything a :class:`Sealer` adds: the
format, the key id, base64url, the checks. itsdangerous is what Starlette's middleware signs with.
"""

from __future__ import annotations

import base64
import json
import time

from nacl.bindings import crypto_secretbox_easy, crypto_secretbox_open_easy
from nacl.utils import random as random_bytes

from sealed_sessions import Sealer, generate_key

from ..fixtures import KEY, SESSION_DATA, STARLETTE_SIGNER, starlette_seal
from .runner import Case, Group, timed

__all__ = ["keyring_group", "open_group", "seal_group"]

LIFETIME = 86400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sealed(sealer: Sealer, now: int) -> str:
    """SESSION_DATA sealed by ``sealer`` at ``now``."""
    return sealer.seal(SESSION_DATA, issued_at=now, expires_at=now + LIFETIME, last_active=now)


def _inputs(sealer: Sealer) -> tuple[int, bytes, bytes]:
    """Now, the session as ours serialises it, and a plaintext of the same length for the raw competitors."""
    now = int(time.time())
    data_json = sealer.peek(_sealed(sealer, now)).data_json
    return now, data_json, bytes(24) + data_json


def seal_group() -> Group:
    sealer = Sealer(KEY)
    now, data_json, plaintext = _inputs(sealer)
    raw_key = random_bytes(32)

    # The raw competitors are written out inline, so no helper call is counted against them.
    def nacl() -> bytes:
        nonce = random_bytes(24)
        return nonce + crypto_secretbox_easy(plaintext, nonce, raw_key)

    def nacl_b64() -> str:
        nonce = random_bytes(24)
        return _b64(nonce + crypto_secretbox_easy(plaintext, nonce, raw_key))

    def ours() -> str:
        return sealer.seal_json(data_json, issued_at=now, expires_at=now + LIFETIME, last_active=now)

    def ours_json() -> str:
        return sealer.seal(SESSION_DATA, issued_at=now, expires_at=now + LIFETIME, last_active=now)

    return Group(
        "seal",
        "Seal a small session (about 100 bytes) into a cookie value",
        "nacl+b64",
        [
            Case("nacl", "raw nacl.bindings: random nonce + crypto_secretbox_easy, bytes out", timed(nacl)),
            Case("nacl+b64", "raw nacl.bindings as above, then base64url (a cookie-safe string)", timed(nacl_b64)),
            Case(
                "ours",
                "sealed_sessions: Sealer.seal_json (JSON already serialised, as the middleware has it)",
                timed(ours),
            ),
            Case("ours+json", "Sealer.seal: checks and serialises the session, then as 'ours'", timed(ours_json)),
            Case(
                "itsdangerous",
                "itsdangerous TimestampSigner.sign(base64(plaintext)) (signed, not encrypted)",
                timed(lambda: STARLETTE_SIGNER.sign(base64.b64encode(plaintext))),
            ),
            Case(
                "starlette+json",
                "what Starlette's middleware does: json.dumps + base64 + TimestampSigner.sign",
                timed(lambda: starlette_seal(SESSION_DATA)),
            ),
        ],
    )


def open_group() -> Group:
    sealer = Sealer(KEY)
    now, _, plaintext = _inputs(sealer)
    raw_key = random_bytes(32)
    nonce = random_bytes(24)
    nacl_raw = nonce + crypto_secretbox_easy(plaintext, nonce, raw_key)
    nacl_text = _b64(nacl_raw)
    ours_text = _sealed(sealer, now)
    signed = STARLETTE_SIGNER.sign(base64.b64encode(plaintext))
    signed_json = starlette_seal(SESSION_DATA)

    def nacl() -> bytes:
        return crypto_secretbox_open_easy(nacl_raw[24:], nacl_raw[:24], raw_key)

    def nacl_b64() -> bytes:
        raw = _unb64(nacl_text)
        return crypto_secretbox_open_easy(raw[24:], raw[:24], raw_key)

    def nacl_b64_json() -> object:
        raw = _unb64(nacl_text)
        return json.loads(crypto_secretbox_open_easy(raw[24:], raw[:24], raw_key)[24:])

    return Group(
        "open",
        "Open a small session cookie value",
        "nacl+b64+json",
        [
            Case("nacl", "raw nacl.bindings: crypto_secretbox_open_easy on bytes", timed(nacl)),
            Case("nacl+b64", "base64url decode + crypto_secretbox_open_easy", timed(nacl_b64)),
            Case(
                "nacl+b64+json",
                "base64url decode + crypto_secretbox_open_easy + json.loads (same work as ours)",
                timed(nacl_b64_json),
            ),
            Case(
                "ours",
                "sealed_sessions: Sealer.open (strict base64url, key by id, MAC, timestamps, json.loads, expiry)",
                timed(lambda: sealer.open(ours_text, now)),
            ),
            Case(
                "itsdangerous",
                "TimestampSigner.unsign(max_age) + base64 decode",
                timed(lambda: base64.b64decode(STARLETTE_SIGNER.unsign(signed, max_age=LIFETIME))),
            ),
            Case(
                "starlette+json",
                "what Starlette's middleware does: unsign + base64 decode + json.loads",
                timed(lambda: json.loads(base64.b64decode(STARLETTE_SIGNER.unsign(signed_json, max_age=LIFETIME)))),
            ),
        ],
    )


def keyring_group() -> Group:
    keys16 = [generate_key() for _ in range(16)]
    ring1, ring16 = Sealer(keys16[0]), Sealer(keys16)
    now = int(time.time())
    one, newest, oldest = _sealed(ring1, now), _sealed(ring16, now), _sealed(Sealer(keys16[-1]), now)
    assert ring16.open(oldest, now).sealed_with_current_key is False  # opened with an older key, as intended

    return Group(
        "keyring",
        "Open with 1 key vs 16 keys in the ring",
        "1 key",
        [
            Case("1 key", "Sealer.open, ring of 1", timed(lambda: ring1.open(one, now))),
            Case(
                "16 keys, newest",
                "Sealer.open, ring of 16, cookie sealed with the current key",
                timed(lambda: ring16.open(newest, now)),
            ),
            Case(
                "16 keys, oldest",
                "Sealer.open, ring of 16, cookie sealed with the oldest key",
                timed(lambda: ring16.open(oldest, now)),
            ),
        ],
    )
