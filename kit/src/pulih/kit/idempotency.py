"""Idempotent commands: a retried POST with the same ``Idempotency-Key`` gets the first answer.

Field devices retry after bad signal. The first answer is stored in the same transaction as the
command's state change and events, so a retry can never apply the command twice, and a key
reused for a different request is refused with 409.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, String, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.database import kit_metadata
from pulih.kit.errors import Conflict, Invalid

idempotency_table = Table(
    "idempotency_keys",
    kit_metadata,
    Column("principal", String(120), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

MAX_KEY_LENGTH = 200

# Built once: a statement made anew for each request costs its cache key each time.
_FIND = select(
    idempotency_table.c.request_hash, idempotency_table.c.status_code, idempotency_table.c.body
).where(
    idempotency_table.c.principal == bindparam("principal"),
    idempotency_table.c.key == bindparam("key"),
)
_STORE = idempotency_table.insert()


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given to a request with this key."""

    status_code: int
    body: Any


class Replay(Exception):
    """Raised to send the stored first answer again instead of running the command."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("idempotent replay")
        self.answer = answer


def request_hash(method: str, path: str, body: bytes) -> str:
    """A fingerprint of a request, to tell a retry from a different request with the same key."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """Validate an ``Idempotency-Key`` header value."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            "Idempotency-Key",
        )
    return key


async def find_answer(
    session: AsyncSession, principal: str, key: str, fingerprint: str
) -> StoredAnswer | None:
    """The stored answer for ``key``, or None; 409 if the key was used for another request."""
    row = (await session.execute(_FIND, {"principal": principal, "key": key})).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
            "Idempotency-Key",
        )
    return StoredAnswer(row.status_code, row.body)


async def store_answer(
    session: AsyncSession, principal: str, key: str, fingerprint: str, answer: StoredAnswer
) -> None:
    """Remember the answer in the caller's transaction."""
    await session.execute(
        _STORE,
        {
            "principal": principal,
            "key": key,
            "request_hash": fingerprint,
            "status_code": answer.status_code,
            "body": answer.body,
            "created_at": datetime.now(UTC),
        },
    )
