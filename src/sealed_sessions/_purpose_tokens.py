"""Purpose-bound tokens: a password-reset or e-mail-verification link that needs no table of its own.

::

    token = auth.issue_token(user, "password_reset", expires_in=900, bound_to=(User.password_hash,))
    user = await auth.redeem_token(db, token, "password_reset", bound_to=(User.password_hash,))

A token is sealed by the one :class:`~._sealer.Sealer` recipe under a subkey of its own per purpose
(cookie name ``sealed-token:<user table>:<purpose>``, the ``context`` of ``SessionAuth``), so it never
opens as a session cookie, a bearer token, a token of another purpose, user model or application. It holds::

    {"u": user id, "f": fingerprint}            plus the Sealer's issued-at and expires-at
    fingerprint = BLAKE2b-128(key=subkey("sealed-token-fp:<table>:<purpose>"), person=b"sealed-fp:v1",
                              data = purpose | user id | (column name | value) for each bound column)

each part length-prefixed and each value type-tagged (``None``, ``""`` and ``b""`` all differ), the
columns sorted by name; the fingerprint is keyed by every key of the ring in turn at redemption, so
rotation keeps tokens valid. 140 URL-safe characters for user id 1, 164 for a 64-bit id, 190 for a UUID.

Redeeming opens the token (expiry from the sealed timestamps), then runs **one** ``SELECT`` by
primary key (``AND`` the active condition) on the request's ``AsyncSession`` and recomputes the
fingerprint from the row it loaded. The fingerprint is computed in Python, not SQL: a keyed hash
is not portable across SQLite, PostgreSQL and MariaDB (the key must never travel to the database
either), and the row is loaded by primary key anyway, so it is still one statement. The row is
read with ``populate_existing``: a user already in the session is refreshed, never trusted.

What you get: a token dies by itself when a bound column changes (a reset link once the password
changed, so it works once; a verification link once the address changed or was verified), at
its expiry, when the key that sealed it leaves the ring, and when its user is deleted or
deactivated. What you do not get: single use without a bound column that the redemption changes
(``bound_to=()`` gives a token valid until it expires), or atomic single use under concurrency
(two redemptions racing before either commits can both succeed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NoReturn, TypeAlias

from sqlalchemy import BigInteger, Select, bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, undefer

from ._errors import ConfigurationError, InvalidCookie, Reason, TokenRefusal, TokenRefused, UnusableUser
from ._events import AuthEvent, AuthEvents, EventKind
from ._keys import KeyRing
from ._lifetime import check_seconds, expiry
from ._model_checks import python_type
from ._rejections import RejectionLog
from ._revocation import RevocationCheck, UserId, UserT
from ._sealer import Sealer
from .sqlalchemy import primary_key_of

__all__ = ["FINGERPRINT_SIZE", "BoundTo", "PurposeTokens"]

BoundTo: TypeAlias = str | QueryableAttribute[Any] | Iterable[str | QueryableAttribute[Any]]
"""The columns a token is bound to: mapped column attributes (``User.password_hash``) or their names."""

FINGERPRINT_SIZE = 16
"""Bytes of the bound columns' fingerprint sealed in a token (BLAKE2b-128)."""
_FINGERPRINT_PERSON = b"sealed-fp:v1"
_PURPOSE = re.compile(r"[a-z0-9_.-]{1,64}")
_BINDABLE = (str, bytes, int, bool, uuid.UUID)
_REFUSALS = {
    Reason.BAD_MAC: TokenRefusal.FORGED,
    Reason.UNKNOWN_KEY: TokenRefusal.FORGED,
    Reason.EXPIRED: TokenRefusal.EXPIRED,
    Reason.FUTURE: TokenRefusal.EXPIRED,
}


class PurposeTokens(Generic[UserT]):
    """The purpose-bound token methods of ``SessionAuth``: :meth:`issue_token` and :meth:`redeem_token`."""

    keys: KeyRing | None
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    context: str
    events: AuthEvents
    _token_refusals: RejectionLog | None = None

    def issue_token(self, user: UserT, purpose: str, *, expires_in: int, bound_to: BoundTo) -> str:
        """A URL-safe token for ``purpose`` that redeems to ``user`` for ``expires_in`` seconds.

        ``purpose`` is a label of 1 to 64 characters ``[a-z0-9_.-]``. ``bound_to`` names the
        columns whose change kills the token (required: pass ``()`` to knowingly bind none), and
        :meth:`redeem_token` must name the same ones. ``user`` must be flushed, its bound columns
        loaded and unchanged since (their values are those the database holds): else
        :class:`UnusableUser`. Without ``secret_key`` on ``SessionAuth``: :class:`ConfigurationError`.
        """
        sealer = self._token_sealer(purpose)
        check_seconds("expires_in", expires_in, allow_none=False, positive=True)
        names = self._bound_names(bound_to)
        state = inspect(user)
        if state.identity is None:
            raise UnusableUser(f"this {type(user).__name__} has no primary key yet: flush or commit it first")
        pk = state.identity[0]
        uid = str(pk) if isinstance(pk, uuid.UUID) else pk
        if self.check.parse_uid(uid) is None:
            raise UnusableUser(f"this {type(user).__name__}'s primary key cannot be carried in a token")
        for name in names:
            if name not in state.dict or state.attrs[name].history.has_changes():
                raise UnusableUser(
                    f"{type(user).__name__}.{name} is not loaded, or changed and not flushed: a token must bind "
                    "the values the database holds (flush, or `await db.refresh(user)`, first)"
                )
        keys = self._token_keys()
        current = keys.subkeys(_fingerprint_label(self._table(), purpose), self.context)[keys.key_ids[0]]
        fingerprint = _fingerprint(current, purpose, uid, [(n, state.dict[n]) for n in names])
        now = int(self.clock())
        data = {"u": uid, "f": base64.urlsafe_b64encode(fingerprint).rstrip(b"=").decode("ascii")}
        return sealer.seal(data, issued_at=now, expires_at=expiry(now, expires_in), last_active=now)

    async def redeem_token(self, db: AsyncSession, token: str, purpose: str, *, bound_to: BoundTo) -> UserT:
        """The user ``token`` was issued to for ``purpose``, if it is still valid: one ``SELECT`` on ``db``.

        ``bound_to`` must name the columns :meth:`issue_token` was given (in any order); other
        columns give a token that is always ``stale``, never one that passes. Raises
        :class:`TokenRefused` with a :class:`TokenRefusal` (logged, at most ten per reason per
        minute, never with the token), :class:`DatabaseUnavailable` when the database fails. Emits
        a ``token_redeemed`` event. Redeeming changes nothing: for single use, change a bound
        column (set the new password) in the same request.
        """
        sealer = self._token_sealer(purpose)
        names = self._bound_names(bound_to)
        uid, raw_uid, fingerprint = self._open_token(sealer, token)
        user = await self.check.load(db, self._token_statement(uid, names), what="token redemption")
        if user is None:
            self._refuse(TokenRefusal.UNKNOWN_USER)
        values = [(n, inspect(user).dict[n]) for n in names]
        keys = self._token_keys()
        subkeys = keys.subkeys(_fingerprint_label(self._table(), purpose), self.context).values()  # any key of the ring
        if not any(hmac.compare_digest(fingerprint, _fingerprint(k, purpose, raw_uid, values)) for k in subkeys):
            self._refuse(TokenRefusal.STALE)
        self.events.emit(AuthEvent(EventKind.TOKEN_REDEEMED, at=self.clock(), user_id=str(uid), purpose=purpose))
        return user

    # -- the parts ---------------------------------------------------------------------------------

    def _token_keys(self) -> KeyRing:
        if self.keys is None:
            raise ConfigurationError(
                "purpose-bound tokens need keys: pass the middleware's key as SessionAuth(..., secret_key=...)"
            )
        return self.keys

    def _token_sealer(self, purpose: str) -> Sealer:
        """The sealer of ``purpose``'s tokens: its own subkey, expiry only from the sealed timestamps."""
        if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
            raise ConfigurationError(f"a token purpose is 1 to 64 characters a-z, 0-9, '_', '.', '-'; got {purpose!r}")
        return Sealer(self._token_keys(), f"sealed-token:{self._table()}:{purpose}", max_age=None, context=self.context)

    def _table(self) -> str:
        """The user table's name, bound into every label: a token of one model never redeems for another."""
        return str(inspect(self.check.user_model).persist_selectable.fullname)

    def _bound_names(self, bound_to: BoundTo) -> list[str]:
        """The bound columns' attribute names, sorted and unique; :class:`ConfigurationError` for anything else."""
        model = self.check.user_model
        items: Iterable[object] = (bound_to,) if isinstance(bound_to, str | QueryableAttribute) else bound_to
        columns = inspect(model).column_attrs
        names: set[str] = set()
        for item in items:
            if (
                isinstance(item, QueryableAttribute)
                and isinstance(item.class_, type)
                and issubclass(model, item.class_)
            ):
                name = item.key
            elif isinstance(item, str):
                name = item
            else:
                raise ConfigurationError(f"bound_to takes columns of {model.__name__} or their names, got {item!r}")
            if name not in columns:
                raise ConfigurationError(f"bound_to: {model.__name__}.{name} is not a mapped column")
            kind = python_type(columns[name].expression)
            if kind not in _BINDABLE:
                raise ConfigurationError(
                    f"bound_to: {model.__name__}.{name} holds {getattr(kind, '__name__', kind)}; bind columns of "
                    "str, bytes, int, bool or UUID (a time or a float may not read back as it was written)"
                )
            names.add(name)
        return sorted(names)

    def _open_token(self, sealer: Sealer, token: object) -> tuple[UserId, int | str, bytes]:
        """``(user id, its form in the token, fingerprint)``; :class:`TokenRefused` for anything else."""
        if not isinstance(token, str):
            self._refuse(TokenRefusal.MALFORMED)
        try:
            opened = sealer.open(token, int(self.clock()))
        except InvalidCookie as exc:
            self._refuse(_REFUSALS.get(exc.reason, TokenRefusal.MALFORMED))
        data = opened.data
        raw_uid, raw_fingerprint = data.get("u"), data.get("f")
        uid = self.check.parse_uid(raw_uid)
        fingerprint = _unb64(raw_fingerprint)
        if (
            len(data) != 2
            or opened.expires_at is None
            or uid is None
            or not isinstance(raw_uid, int | str)  # always so when parse_uid accepted it
            or len(fingerprint) != FINGERPRINT_SIZE
        ):
            self._refuse(TokenRefusal.MALFORMED)
        return uid, raw_uid, fingerprint

    def _token_statement(self, uid: UserId, names: Sequence[str]) -> Select[Any]:
        """``SELECT user WHERE pk = :uid [AND active]``, the bound columns loaded, the row refreshed."""
        model = self.check.user_model
        pk_name, _ = primary_key_of(model)
        value = bindparam("uid", uid, type_=BigInteger()) if isinstance(uid, int) else uid
        query = select(model).where(getattr(model, pk_name) == value)
        active = self.check._active  # the check's own condition, so both agree on "active"
        if active is not None:
            query = query.where(active)
        return query.options(*(undefer(getattr(model, n)) for n in names)).execution_options(populate_existing=True)

    def _refuse(self, reason: TokenRefusal) -> NoReturn:
        if self._token_refusals is None:
            self._token_refusals = RejectionLog(
                "redeem_token", self.clock, reason_prefix="token_", template="%s refused a token: %s"
            )
            self._token_refusals.listener = self.events.emit  # refusals are REFUSAL events too
        self._token_refusals(reason.value)
        raise TokenRefused(reason)


def _fingerprint_label(table: str, purpose: str) -> str:
    return f"sealed-token-fp:{table}:{purpose}"  # ':' cannot occur in a cookie name: no session cookie shares it


def _fingerprint(key: bytes, purpose: str, uid: int | str, columns: Sequence[tuple[str, object]]) -> bytes:
    parts = [purpose.encode(), _tagged(uid)]
    for name, value in columns:
        parts += [name.encode(), _tagged(value)]
    data = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    return hashlib.blake2b(data, key=key, person=_FINGERPRINT_PERSON, digest_size=FINGERPRINT_SIZE).digest()


def _tagged(value: object) -> bytes:
    """One value, its type first: ``None``, ``False``, ``0``, ``""`` and ``b""`` never encode alike."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"y" + value
    if isinstance(value, uuid.UUID):
        return b"u" + value.bytes
    raise ConfigurationError(f"a bound column holds a {type(value).__name__}, which a token cannot bind")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str) or not value.isascii():
        return b""
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return b""
