"""The periodic job that escalates referrals a clinic did not answer by ``respond_by``.

Safe with several replicas on one store: each referral is escalated by a conditional UPDATE
(still ``referred``, not escalated, same version), so only one replica emits the event.
"""

from __future__ import annotations

from sqlalchemy import select, update

from pulih.contracts.codes import EscalationReason
from pulih.contracts.events.referral import ReferralEscalated
from pulih.kit.runtime import ServiceRuntime
from pulih.referral import domain
from pulih.referral.domain import ReferralStatus
from pulih.referral.store import Referral


async def escalate_overdue(runtime: ServiceRuntime) -> int:
    """Escalate every unanswered referral past its ``respond_by``; return how many."""
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        rows = (
            await session.execute(
                select(Referral.referral_id, Referral.clinic_id, Referral.respond_by, Referral.version).where(
                    Referral.status == ReferralStatus.REFERRED.value,
                    Referral.escalated.is_(False),
                    Referral.respond_by < today,
                )
            )
        ).all()
    escalated = 0
    for row in rows:
        if not domain.overdue(ReferralStatus.REFERRED, row.respond_by, today, escalated=False):
            continue
        on = domain.escalated_on(row.respond_by)
        async with runtime.database.transaction() as session:
            result = await session.execute(
                update(Referral)
                .where(
                    Referral.referral_id == row.referral_id,
                    Referral.version == row.version,
                    Referral.status == ReferralStatus.REFERRED.value,
                    Referral.escalated.is_(False),
                )
                .values(
                    escalated=True,
                    escalated_on=on,
                    escalation_reason=EscalationReason.NO_RESPONSE.value,
                    version=Referral.version + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                continue  # answered, cancelled or escalated by someone else meanwhile
            await runtime.emitter.emit(
                session,
                ReferralEscalated(
                    referral_id=row.referral_id,
                    clinic_id=row.clinic_id,
                    on=on,
                    reason=EscalationReason.NO_RESPONSE,
                ),
            )
            escalated += 1
    return escalated
