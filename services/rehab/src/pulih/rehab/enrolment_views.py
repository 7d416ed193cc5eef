"""Building the API's views of enrolments from the store."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.rehab.store import Enrolment, PhaseRecord, SessionRecord
from pulih.rehab.views import EnrolmentView, PhaseView


async def enrolment_view(session: AsyncSession, enrolment: Enrolment) -> EnrolmentView:
    """An enrolment with its phases and session counts."""
    phases = (
        await session.scalars(
            select(PhaseRecord)
            .where(PhaseRecord.enrollment_id == enrolment.enrollment_id)
            .order_by(PhaseRecord.id)
        )
    ).all()
    held, attended = (
        await session.execute(
            select(
                func.count(SessionRecord.session_id),
                func.count(SessionRecord.session_id).filter(SessionRecord.attended.is_(True)),
            ).where(SessionRecord.enrollment_id == enrolment.enrollment_id)
        )
    ).one()
    return EnrolmentView.model_validate(
        {
            "enrollment_id": enrolment.enrollment_id,
            "client_id": enrolment.client_id,
            "unit_id": enrolment.unit_id,
            "agent_id": enrolment.agent_id,
            "programme": enrolment.programme,
            "enrolled_on": enrolment.enrolled_on,
            "planned_end_on": enrolment.planned_end_on,
            "aftercare_only": enrolment.aftercare_only,
            "phase": enrolment.phase,
            "status": enrolment.status,
            "paused_since": enrolment.paused_since,
            "discharged_on": enrolment.discharged_on,
            "discharge_reason": enrolment.discharge_reason,
            "phases": [PhaseView.model_validate(p, from_attributes=True) for p in phases],
            "sessions_held": held,
            "sessions_attended": attended,
        }
    )
