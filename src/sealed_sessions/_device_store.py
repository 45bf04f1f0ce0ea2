"""The SQL of per-device sessions: the check's extra conditions, and every write to the device table.

Knows SQLAlchemy, not HTTP. :class:`~sealed_sessions._revocation.RevocationCheck` adds
:meth:`DeviceStore.join` to its one ``SELECT``; :class:`~sealed_sessions.fastapi.SessionAuth`
calls the rest at login, logout, revoke, listing and purging. Each method is one statement,
except ``login`` (an ``INSERT``, then the cap) and ``revoke``'s callers. None of them commits:
the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Select, and_, bindparam, delete, literal, not_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from ._device_model import (
    DEVICE_ID_MAX_LENGTH,
    DeviceInfo,
    DeviceSessionMixin,
    hash_device_secret,
    new_device_secret,
)
from ._errors import UnsupportedModel
from .sqlalchemy import _mapper

__all__ = [
    "DEVICE_ID_KEY",
    "DEVICE_SECRET_KEY",
    "SEEN_INTERVAL",
    "SEEN_KEY",
    "DeviceProof",
    "DeviceStore",
    "device_proof",
]

DEVICE_ID_KEY = "_auth_dev"
"""Session key of the device's public id."""
DEVICE_SECRET_KEY = "_auth_dsec"  # noqa: S105 -- the name of a session key, not a secret
"""Session key of the device secret (its SHA-256 is in the device row)."""
SEEN_KEY = "_auth_seen"
"""Session key of when ``last_seen_at`` was last written for this device."""
SEEN_INTERVAL = 15 * 60
"""Default seconds between two ``last_seen_at`` writes for one device."""

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
SECRET_MAX_LENGTH = 64

DeviceT = TypeVar("DeviceT", bound=DeviceSessionMixin)


@dataclass(frozen=True, slots=True)
class DeviceProof:
    """What a session holds of its device: the public id and the secret (never stored)."""

    id: str
    secret: str


def device_proof(session: Mapping[str, Any]) -> DeviceProof | None:
    """The device id and secret a session holds, or ``None`` if they are missing or malformed."""
    device_id = session.get(DEVICE_ID_KEY)
    secret = session.get(DEVICE_SECRET_KEY)
    if not (_plausible_id(device_id) and _plausible_id(secret, limit=SECRET_MAX_LENGTH)):
        return None
    return DeviceProof(str(device_id), str(secret))


def _plausible_id(value: object, *, limit: int = DEVICE_ID_MAX_LENGTH) -> bool:
    """A base64url string of 1 to ``limit`` characters: the only shape a device id or secret has."""
    return isinstance(value, str) and 0 < len(value) <= limit and _URLSAFE.fullmatch(value) is not None


class DeviceStore(Generic[DeviceT]):
    """The device table of one :class:`SessionAuth`: ``model`` rows owned by ``user_model`` rows.

    Refuses at construction a model without :class:`DeviceSessionMixin`, or whose ``user_id`` is
    not a foreign key to the user's primary key with ``ON DELETE CASCADE``.
    """

    model: type[DeviceT]
    max_age: int
    """Seconds a device row lives from login (its absolute expiry)."""
    max_devices: int | None
    """Devices per user; logging in beyond it ends the oldest. ``None``: no cap."""
    idle_window: int | None
    """Seconds without a ``last_seen_at`` write after which a device is dead, or ``None``."""

    def __init__(
        self,
        model: type[DeviceT],
        user_model: type[Any],
        *,
        max_age: int,
        max_devices: int | None,
        idle_window: int | None = None,
    ) -> None:
        if not (isinstance(model, type) and issubclass(model, DeviceSessionMixin)):
            raise UnsupportedModel(f"devices={model!r} must be a mapped class using DeviceSessionMixin")
        _check_owner_column(_mapper(model), _mapper(user_model))
        self.model = model
        self.max_age = max_age
        self.max_devices = max_devices
        self.idle_window = idle_window

    # -- the check --------------------------------------------------------------------------------

    def join(self, statement: Select[Any], user_key: Any) -> Select[Any]:
        """``statement`` joined to the session's device row: its id, owner, secret and expiry in the
        WHERE, as bound parameters (see :meth:`parameters`), so the statement can be built once."""
        device = self.model
        return statement.join(device, device.user_id == user_key).where(  # type: ignore[attr-defined]
            device.id == bindparam("device_id"),
            device.secret_hash == bindparam("secret_hash"),
            self._alive(bindparam("alive_at", type_=BigInteger())),
        )

    def parameters(self, proof: DeviceProof, now: int) -> dict[str, Any]:
        """The values of :meth:`join`'s parameters for ``proof`` at ``now``."""
        return {"device_id": proof.id, "secret_hash": hash_device_secret(proof.secret), "alive_at": now}

    def _alive(self, now: Any) -> ColumnElement[bool]:
        """Not expired, and (with an idle window) seen recently enough, at ``now`` (a value or a parameter)."""
        device = self.model
        at = now if isinstance(now, ColumnElement) else literal(now, BigInteger())
        alive = device.expires_at > at
        if self.idle_window is not None:
            alive = and_(alive, device.last_seen_at > at - self.idle_window)
        return alive

    async def touch(self, db: AsyncSession, user_id: Any, device_id: str, now: int) -> None:
        """Record that the device was seen at ``now`` (one ``UPDATE``, scoped to its owner)."""
        device = self.model
        await db.execute(
            update(device)
            .where(device.id == device_id, device.user_id == user_id)  # type: ignore[attr-defined]
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )

    # -- writes -----------------------------------------------------------------------------------

    async def login(
        self,
        db: AsyncSession,
        user_id: Any,
        now: int,
        *,
        user_agent: str,
        ip_address: str | None,
        replaces: tuple[Any, str] | None = None,
        max_age: int | None = None,
    ) -> DeviceProof:
        """Insert a device row for a new login and return what the session must hold.

        ``replaces`` (user id, device id) is the device of the session logging in again, deleted
        first: a browser has one device row, not one per login. Beyond ``max_devices``, the user's
        oldest other devices are deleted (one ``SELECT`` of their ids, one ``DELETE``: portable
        where ``DELETE ... LIMIT`` in a subquery is not, as on MariaDB); never the new one, even
        when all were created in the same second.
        """
        if replaces is not None:
            await self.end(db, *replaces)
        secret = new_device_secret()
        row = self.model()
        row.user_id = user_id  # type: ignore[attr-defined]  # declared by the application
        row.secret_hash = hash_device_secret(secret)
        row.created_at = row.last_seen_at = now
        row.expires_at = now + (self.max_age if max_age is None else max_age)
        row.user_agent = user_agent
        row.ip_address = ip_address
        db.add(row)
        await db.flush()
        if self.max_devices is not None:
            device = self.model
            oldest = await db.scalars(
                select(device.id)
                .where(device.user_id == user_id, device.id != row.id)  # type: ignore[attr-defined]
                .order_by(device.created_at.desc(), device.id.desc())
                .offset(self.max_devices - 1)
            )
            ids = list(oldest)
            if ids:
                await self._delete(db, user_id, device.id.in_(ids))
        return DeviceProof(row.id, secret)

    async def end(self, db: AsyncSession, user_id: Any, device_id: str) -> bool:
        """Delete one device of ``user_id`` (one ``DELETE``); ``False`` if it is not theirs or not there."""
        if not _plausible_id(device_id):  # a NUL would be a database error on PostgreSQL, not a 404
            return False
        return await self._delete(db, user_id, self.model.id == device_id) > 0

    async def end_all(self, db: AsyncSession, user_id: Any, *, keep: str | None = None) -> int:
        """Delete every device of ``user_id``, or every one but ``keep`` (one ``DELETE``); the count."""
        condition = self.model.id != keep if keep is not None else None
        return await self._delete(db, user_id, condition)

    async def purge(self, db: AsyncSession, now: int) -> int:
        """Delete every dead device row (expired, or idle past the window), of every user (one ``DELETE``)."""
        result = await db.execute(
            delete(self.model).where(not_(self._alive(now))).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def list(self, db: AsyncSession, user_id: Any, now: int, current: str | None) -> list[DeviceInfo]:
        """The user's live devices, newest first, ``current`` flagged (one ``SELECT``)."""
        device = self.model
        rows: Sequence[DeviceT] = (
            await db.scalars(
                select(device)
                .where(device.user_id == user_id, self._alive(now))  # type: ignore[attr-defined]
                .order_by(device.created_at.desc(), device.id.desc())
            )
        ).all()
        return [
            DeviceInfo(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                user_agent=row.user_agent,
                ip_address=row.ip_address,
                current=row.id == current,
            )
            for row in rows
        ]

    async def _delete(self, db: AsyncSession, user_id: Any, condition: ColumnElement[bool] | None) -> int:
        device = self.model
        statement = delete(device).where(device.user_id == user_id)  # type: ignore[attr-defined]
        if condition is not None:
            statement = statement.where(condition)
        result = await db.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def _check_owner_column(device: Mapper[Any], user: Mapper[Any]) -> None:
    """``device.user_id`` must reference the user's primary key, ``ON DELETE CASCADE``."""
    how = (
        'declare it as `user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), '
        "index=True)`, naming your user table"
    )
    column = device.columns.get("user_id")
    if column is None:
        raise UnsupportedModel(f"{device.class_.__name__} has no user_id column: {how}")
    (user_key,) = user.primary_key
    keys = [fk for fk in column.foreign_keys if fk.column is user_key]
    if not keys:
        raise UnsupportedModel(f"{device.class_.__name__}.user_id must reference {user_key}: {how}")
    if (keys[0].ondelete or "").upper() != "CASCADE":
        raise UnsupportedModel(
            f"{device.class_.__name__}.user_id needs ondelete='CASCADE', so a deleted user's devices go with it: {how}"
        )
