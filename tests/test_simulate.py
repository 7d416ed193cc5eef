"""The simulator (issue 12), against real services and a real NATS server (``pulih up`` on free
ports).

- Its clinics answer over NATS with the reference clinic's protocol: accepted in time and
  completed, with a back referral, late (after ``respond_by``, so escalated first), declined, or
  never; the referral service applies each as the clinic meant, refuses none, and escalates only
  the late, declined and unanswered referrals (the clocks move a day at a time, and each day's
  answers are applied before the next move).
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulate_support import FACILITATOR, START, Api, regency_up, token

from pulih.kit.auth import Role
from pulih.kit.simulate.clinic import ClinicAccess, Outcome, SimulatedClinics

pytestmark = [pytest.mark.system, pytest.mark.slow]

CLINIC = "klinik-pratama-demo"
SCREENING = {
    "injecting": "never",
    "substances": [
        {"substance": "amphetamine_type_stimulants", "ever_used": True,
         "q2": 4, "q3": 4, "q4": 5, "q5": 5, "q6": 3, "q7": 3},
    ],
}  # fmt: skip


async def _referral(api: Api, unit: str, agent: str, agent_token: str, serial: int) -> dict[str, Any]:
    """A client registered, consenting and screened on the first day, referred to the clinic."""
    day = str(START)
    client = await api.post(
        "outreach",
        "/v1/clients",
        agent_token,
        {"unit_id": unit, "registered_on": day, "came_through": "outreach",
         "identity": {"full_name": f"Klien Uji {serial}", "nik": f"3301010101{85:02d}{serial:04d}",
                      "birth_date": "1985-01-01", "sex": "m"}},
    )  # fmt: skip
    cid = client["client_id"]
    consent = await api.send(
        "POST", "outreach", f"/v1/clients/{cid}/consents", agent_token,
        {"scopes": ["programme", "referral"], "given_on": day},
    )  # fmt: skip
    screened = await api.send(
        "POST", "outreach", f"/v1/clients/{cid}/screenings", agent_token,
        {"agent_id": agent, "screened_on": day, **SCREENING},
    )  # fmt: skip
    after = ",".join(r.headers["Pulih-Events"] for r in (consent, screened))
    referral: dict[str, Any] = await api.post(
        "referral",
        "/v1/referrals",
        agent_token,
        {"client_id": cid, "clinic_id": CLINIC, "service": "rawat_jalan", "reason": "high_risk",
         "urgency": "routine", "referred_on": day},
        after=after,
    )  # fmt: skip
    return referral


def test_the_simulated_clinics_answer_over_nats_as_each_outcome_says(tmp_path: Path) -> None:
    with regency_up(tmp_path / "regency") as regency:

        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                api = Api(regency, http)
                await api.post(
                    "referral", "/v1/clinics", FACILITATOR,
                    {"clinic_id": CLINIC, "name": "Klinik Pratama Demo", "kind": "klinik_pratama",
                     "services": ["rawat_jalan", "medis"], "regencies": ["3301"]},
                )  # fmt: skip
                unit_body = {
                    "name": "Unit IBM Slarang",
                    "village_code": "3301012001",
                    "established_on": str(START),
                }
                unit = (await api.post("outreach", "/v1/units", FACILITATOR, unit_body))["unit_id"]
                agent_body = {"trained_on": str(START)}
                agent = (await api.post("outreach", f"/v1/units/{unit}/agents", FACILITATOR, agent_body))[
                    "agent_id"
                ]
                agent_token = token(Role.AGENT, agent, unit_id=unit)
                access = ClinicAccess(f"nats://127.0.0.1:{regency.nats_port}", "3301", CLINIC)
                async with SimulatedClinics([access], {"completed": 1.0}) as clinics:
                    referrals = {}
                    rng = random.Random(7)
                    for serial, outcome in enumerate(Outcome, start=1):
                        referral = await _referral(api, unit, agent, agent_token, serial)
                        clinics.shares = {outcome.value: 1.0}
                        assert clinics.plan(rng, referral) is outcome
                        referrals[outcome] = referral["referral_id"]

                    async def status_of(clinic_id: str, referral_id: str) -> str:
                        clinic_token = token(Role.CLINIC, clinic_id, clinic_id=clinic_id)
                        return str(
                            (await api.get("referral", f"/v1/referrals/{referral_id}", clinic_token))[
                                "status"
                            ]
                        )

                    # a day at a time: completed, back referral, late, declined answered; no_answer never
                    published = 0
                    later = START + timedelta(days=60)
                    for n in range(1, 61):
                        await api.move_clocks(START + timedelta(days=n))
                        published += await clinics.answer_due(START + timedelta(days=n))
                        await clinics.settle(status_of)
                    assert published == 3 + 3 + 3 + 1
                    assert clinics.pending == []

                    async def closed() -> dict[Outcome, dict[str, Any]] | None:
                        seen = {
                            o: await api.get("referral", f"/v1/referrals/{r}") for o, r in referrals.items()
                        }
                        done = all(v["status"] in ("completed", "declined") for o, v in seen.items()
                                   if o is not Outcome.NO_ANSWER)  # fmt: skip
                        return seen if done else None

                    seen = await api.until("the referral service to apply every answer", closed)
                    await clinics.answer_due(later)  # reads any AnswerRejected
                    assert clinics.refused == []
                counted = {p: dict(c) for p, c in clinics.counted.items()}
                assert sum(c.get("referrals_accepted", 0) for c in counted.values()) == 3
                assert sum(c.get("referrals_completed", 0) for c in counted.values()) == 3

            def shown(o: Outcome) -> tuple[Any, ...]:
                v = seen[o]
                return v["status"], v["outcome"], v["back_referral"], v["escalated"]

            assert shown(Outcome.COMPLETED) == ("completed", "completed", False, False)
            assert shown(Outcome.BACK_REFERRAL) == ("completed", "completed", True, False)
            assert shown(Outcome.LATE)[:2] == ("completed", "completed")
            assert shown(Outcome.LATE)[3] is True  # escalated before the late acceptance
            late = seen[Outcome.LATE]
            assert date.fromisoformat(late["accepted_on"]) > date.fromisoformat(late["respond_by"])
            assert seen[Outcome.DECLINED]["status"] == "declined"
            assert seen[Outcome.DECLINED]["escalated"] is True
            assert (seen[Outcome.NO_ANSWER]["status"], seen[Outcome.NO_ANSWER]["escalated"]) == (
                "referred",
                True,
            )

        asyncio.run(run())
