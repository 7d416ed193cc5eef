"""The append-only audit of identity reads: who asked for whose identity, why, and what they got.

Every attempt is written, granted or refused, in a transaction of its own, so a refusal is
recorded even though the request that made it fails. Each service maps :class:`AuditEntry` onto
its own table and adds what it needs to say (outreach: the client and on whose behalf; referral:
the referral, the clinic and the reason of a refusal).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from pulih.kit.auth import Principal
from pulih.kit.database import BigIntId, Database
from pulih.kit.metrics import IDENTITY_READS


class AuditEntry:
    """One attempt to read an identity."""

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    """``granted``, ``denied``, ``erased`` or ``unavailable``."""
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


async def audit(
    database: Database,
    model: type[AuditEntry],
    principal: Principal,
    *,
    purpose: str,
    outcome: str,
    **about: Any,
) -> None:
    """Write one attempt by ``principal`` to ``model``'s table, committed at once."""
    entry: dict[str, Any] = {
        "actor": principal.sub,
        "actor_role": principal.role.value,
        "purpose": purpose,
        "outcome": outcome,
        "read_at": datetime.now(UTC),
    }
    async with database.transaction() as session:
        session.add(model(**entry, **about))
    IDENTITY_READS.labels(outcome).inc()
