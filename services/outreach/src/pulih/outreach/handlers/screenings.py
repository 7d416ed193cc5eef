"""WHO ASSIST v3 screenings."""

from __future__ import annotations

import uuid
from datetime import date
from uuid import UUID

from sqlalchemy import bindparam, select

from pulih.contracts.codes import Instrument
from pulih.contracts.consent import ConsentTerms
from pulih.contracts.events.outreach import ClientScreened, SubstanceResult
from pulih.kit.auth import Principal
from pulih.kit.database import insert_new
from pulih.kit.unit_of_work import UnitOfWork
from pulih.outreach.access import active_agent, client_for
from pulih.outreach.bodies import ScreenClient
from pulih.outreach.deps import OutreachDeps
from pulih.outreach.domain import consent as consent_rules
from pulih.outreach.domain import registration as registration_rules
from pulih.outreach.domain.assist import AssistAnswers, SubstanceAnswers, score_assist
from pulih.outreach.store import Consent, Screening

# Built once, and Core rather than ORM: a screening only reads the client's consents, and the
# ORM's load costs more than the SELECT itself.
_CONSENTS = select(Consent.scopes, Consent.given_on, Consent.expires_on, Consent.withdrawn_on).where(
    Consent.client_id == bindparam("client_id")
)


async def screen_client(
    uow: UnitOfWork,
    deps: OutreachDeps,
    principal: Principal,
    client_id: UUID,
    today: date,
    body: ScreenClient,
) -> Screening:
    """Screen with WHO ASSIST v3: scores, risks and the regency's recommended path."""
    client = await client_for(uow.session, client_id, principal)
    consent_rules.not_erased(client.erased_on)
    answers = AssistAnswers(
        substances=tuple(SubstanceAnswers(**s.model_dump()) for s in body.substances),
        injecting=body.injecting,
    )
    result = score_assist(answers, deps.screening_path)
    agent = await active_agent(uow.session, body.agent_id, client.unit_id)
    registration_rules.check_screening_date(body.screened_on, client.registered_on, agent.trained_on, today)
    consents = await uow.session.execute(_CONSENTS, {"client_id": client_id})
    terms = (ConsentTerms(frozenset(c.scopes), c.given_on, c.expires_on, c.withdrawn_on) for c in consents)
    consent_rules.require_consent_to_screen(terms, body.screened_on)
    screening = Screening(
        screening_id=uuid.uuid4(),
        client_id=client_id,
        unit_id=client.unit_id,
        agent_id=body.agent_id,
        screened_on=body.screened_on,
        answers=body.model_dump(mode="json", include={"substances", "injecting"}),
        substances=[
            {"substance": s.substance.value, "score": s.score, "risk": s.risk.value}
            for s in result.substances
        ],
        overall_risk=result.overall_risk.value,
        injected_last_3_months=result.injected_last_3_months,
        recommendation=result.recommendation.value,
    )
    await insert_new(uow.session, screening)
    await uow.emit(
        ClientScreened(
            screening_id=screening.screening_id,
            client_id=client_id,
            unit_id=client.unit_id,
            agent_id=body.agent_id,
            screened_on=body.screened_on,
            instrument=Instrument.ASSIST_V3,
            substances=[SubstanceResult.model_validate(s) for s in screening.substances],
            injected_last_3_months=result.injected_last_3_months,
            overall_risk=result.overall_risk,
            recommendation=result.recommendation,
        )
    )
    return screening
