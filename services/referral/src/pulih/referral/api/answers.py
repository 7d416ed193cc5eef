"""Route for a clinic's answer over HTTP, for clinics without NATS: the same rules and the same
events as an answer published on NATS."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pulih.kit.auth import Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.errors import PulihError
from pulih.referral import handlers
from pulih.referral.bodies import ClinicAnswer, ReferralView, body_field
from pulih.referral.consumers import clinic_answers_consumer

router = APIRouter(prefix="/v1", tags=["referrals"])


@router.post(
    "/referrals/{referral_id}/answers", response_model=ReferralView, dependencies=[allow(Role.CLINIC)]
)
async def answer_referral(referral_id: UUID, body: ClinicAnswer, cmd: CommandDep) -> JSONResponse:
    """A clinic without NATS answers here with its clinic token: the same rules as on NATS, and
    the same events (its answer is published on its own clinic subject)."""
    clinic_id = cmd.principal.clinic_id
    assert clinic_id is not None  # a clinic token always names its clinic
    try:
        async with cmd.transaction() as tx:
            referral = await handlers.answer_over_http(
                tx,
                clinic_id,
                body.event(referral_id),
                answers_inbox=clinic_answers_consumer(cmd.runtime),
                today=cmd.runtime.clock.today(),
            )
            return tx.reply(ReferralView.model_validate(referral))
    except PulihError as exc:
        exc.field = body_field(exc.field)  # the rules name the event's fields
        raise
