"""Referral with real NATS, deploy/'s permissions and the reference clinic of deploy/examples:
the whole loop, escalation on a decline, and illegal answers dead-lettered without effect, the
clinic told of each on its own subject (``AnswerRejected``)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import nats
import pytest
from outreach_factories import Outreach, screening_body
from referral_factories import CLINIC, OTHER_CLINIC, Referrals
from referral_regency import CLINIC_PASSWORDS, ROOT, secured_nats, service_url
from rehab_factories import Client, Rehab
from system_support import running, stream_messages

from pulih.contracts import Event, new_event, parse_event, subject_for
from pulih.contracts.events.clinic import ReferralAccepted, TreatmentCompleted
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY, eventually, make_settings
from pulih.outreach.app import build as build_outreach
from pulih.referral.app import build as build_referral
from pulih.referral.store import KnownScreening
from pulih.rehab.app import build as build_rehab

pytestmark = pytest.mark.system

REFERENCE_CLINIC = ROOT / "deploy" / "examples" / "clinic" / "clinic.py"
TODAY = "2026-03-01"
"""The regency's (manual) today in these tests: the clinic answers on it, not on its own clock's."""


@dataclass
class Regency:
    server: NatsServer
    outreach: Outreach
    referrals: Referrals
    rehab: Rehab
    last_client: Client | None = None

    @property
    def nats_url(self) -> str:
        return service_url(self.server)

    async def screened_client(self) -> str:
        """The walkthrough's client: registered, consenting to referral, screened (moderate)."""
        o = self.outreach
        unit_id = await o.unit()
        agent_id = await o.agent(unit_id)
        agent = o.agent_auth(unit_id, agent_id)
        client_id = str((await o.client(unit_id, agent)).json()["client_id"])
        await o.consent(client_id, agent, scopes=["programme", "referral"])
        r = await o.http.post(
            f"/v1/clients/{client_id}/screenings", headers=agent, json=screening_body(agent_id)
        )
        assert r.status_code == 201, r.text

        async def screened() -> Any:
            async with self.referrals.runtime.database.sessions() as s:
                return await s.get(KnownScreening, uuid.UUID(r.json()["screening_id"]))

        await eventually(screened, timeout=20)  # referral learnt it from outreach's events
        self.last_client = Client(client_id, unit_id, agent_id)
        return client_id

    async def refer(self, client_id: str) -> str:
        r = await self.referrals.http.post(
            "/v1/referrals",
            headers=self.referrals.facilitator,
            json={
                "client_id": client_id,
                "clinic_id": CLINIC,
                "service": "rawat_jalan",
                "reason": "client_request",
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["referral_id"])

    async def events(self, subject: str) -> list[Any]:
        return [parse_event(m.data) for m in await stream_messages(self.nats_url, subject)]

    async def as_clinic(self, clinic_id: str, *events: Event) -> None:
        """Publish answers with the clinic's own NATS user, as its system would."""
        nc = await nats.connect(
            self.server.url,
            user=f"clinic-{clinic_id}",
            password=CLINIC_PASSWORDS[clinic_id],
            inbox_prefix=f"_INBOX_{clinic_id}",
        )
        try:
            js = nc.jetstream()
            for data in events:
                envelope = new_event(data, regency=REGENCY)
                await js.publish(
                    subject_for(envelope, REGENCY, clinic_id=clinic_id),
                    envelope.to_json(),
                    headers={"Nats-Msg-Id": str(envelope.id)},
                )
        finally:
            await nc.close()


@pytest.fixture
async def regency(tmp_path: Path) -> AsyncIterator[Regency]:
    server = secured_nats(tmp_path / "nats").start()
    try:
        url = service_url(server)
        outreach_app = build_outreach(
            make_settings(tmp_path / "o", nats_url=url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db")
        )
        referral_app = build_referral(
            make_settings(
                tmp_path / "r",
                nats_url=url,
                database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
                PULIH_CLOCK="manual",
                PULIH_CLOCK_START=TODAY,
            )
        )
        rehab_app = build_rehab(
            make_settings(
                tmp_path / "h",
                nats_url=url,
                database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db",
                PULIH_CLOCK="manual",
                PULIH_CLOCK_START="2026-03-01",
            )
        )
        async with (
            running(outreach_app) as o_http,
            running(referral_app) as r_http,
            running(rehab_app) as h_http,
        ):
            regency = Regency(
                server,
                Outreach(o_http, outreach_app),
                Referrals(r_http, referral_app),
                Rehab(h_http, rehab_app),
            )
            await regency.referrals.add_clinic()
            await regency.referrals.add_clinic(OTHER_CLINIC)
            yield regency
    finally:
        server.stop()


async def run_reference_clinic(regency: Regency, *flags: str, count: int | None = 1) -> str:
    """Run deploy/examples/clinic/clinic.py as clinic CLINIC: answer ``count`` referrals, or
    (None) read what is pending and stop; its output."""
    counted = ("--count", str(count)) if count is not None else ()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REFERENCE_CLINIC),
        "--url",
        regency.server.url,
        "--password",
        CLINIC_PASSWORDS[CLINIC],
        "--clinic",
        CLINIC,
        "--regency",
        REGENCY,
        *counted,
        "--timeout",
        "40",
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 0, text
    return text


async def test_the_full_loop_with_the_reference_clinic_resumes_the_client_in_bina_lanjut(
    regency: Regency,
) -> None:
    client_id = await regency.screened_client()
    client = regency.last_client
    assert client is not None
    rehab = regency.rehab

    async def known_to_rehab() -> int:
        return (await rehab.http.get(f"/v1/clients/{client_id}", headers=client.agent)).status_code

    await eventually(known_to_rehab, until=lambda status: status == 200, timeout=20)
    enrollment_id = await rehab.enrolled(client, date(2026, 2, 27))
    referral_id = await regency.refer(client_id)
    await eventually(
        lambda: rehab.enrolment(enrollment_id), until=lambda e: e["status"] == "paused", timeout=20
    )
    output = await run_reference_clinic(regency, "--on", TODAY)
    assert "answered 1 referral(s)" in output

    referral = await eventually(
        lambda: regency.referrals.get(referral_id), until=lambda r: r["status"] == "completed", timeout=20
    )
    assert referral["outcome"] == "completed" and referral["back_referral"] is True
    assert referral["accepted_on"] is not None and referral["attended_on"] is not None

    answers = await regency.events(f"ibm.{REGENCY}.clinic.{CLINIC}.>")
    assert [e.type for e in answers] == [
        "pulih.clinic.ReferralAccepted.v1",
        "pulih.clinic.ClientAttended.v1",
        "pulih.clinic.TreatmentCompleted.v1",
    ]
    closed = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.referral_closed.{CLINIC}"),
        until=lambda e: len(e) == 1,
    )
    assert (str(closed[0].data.referral_id), closed[0].data.outcome, closed[0].data.back_referral) == (
        referral_id,
        "completed",
        True,
    )
    assert closed[0].causationid == str(answers[-1].id)
    assert closed[0].correlationid == (answers[-1].correlationid or str(answers[-1].id))

    # rehab, which paused the enrolment while the client was at the clinic, resumes it in aftercare
    enrolment = await eventually(
        lambda: rehab.enrolment(enrollment_id), until=lambda e: e["phase"] == "bina_lanjut", timeout=20
    )
    assert enrolment["status"] == "active"
    phases = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.rehab.phase_completed"),
        until=lambda e: any(x.data.next_phase == "bina_lanjut" for x in e),
    )
    resumed = [e for e in phases if e.data.next_phase == "bina_lanjut"]
    assert len(resumed) == 1 and resumed[0].data.phase == "penerimaan_awal"
    assert resumed[0].causationid == str(closed[0].id)
    assert await regency.events(f"ibm.{REGENCY}.dlq.>") == []


async def test_a_decline_from_the_reference_clinic_escalates_and_closes(regency: Regency) -> None:
    referral_id = await regency.refer(await regency.screened_client())
    await run_reference_clinic(regency, "--decline", "--on", TODAY)
    referral = await eventually(
        lambda: regency.referrals.get(referral_id), until=lambda r: r["status"] == "declined", timeout=20
    )
    assert referral["escalated"] is True and referral["escalation_reason"] == "declined"
    escalated = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.referral_escalated.{CLINIC}"),
        until=lambda e: len(e) == 1,
    )
    assert escalated[0].data.reason == "declined"
    closed = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.referral_closed.{CLINIC}"),
        until=lambda e: len(e) == 1,
    )
    assert closed[0].data.outcome == "declined" and closed[0].data.back_referral is False


def dead_letter(message: Any) -> dict[str, Any]:
    """The fields of a dead letter, as a plain JSON body or as the data of a CloudEvent."""
    body: dict[str, Any] = json.loads(message.data)
    return dict(body["data"]) if "specversion" in body else body


async def test_illegal_answers_are_dead_lettered_change_nothing_and_each_clinic_is_told_once(
    regency: Regency,
) -> None:
    referral_id = await regency.refer(await regency.screened_client())
    before = await regency.referrals.get(referral_id)
    rid = uuid.UUID(referral_id)
    unknown = uuid.uuid4()
    day = date(2026, 3, 2)
    await regency.as_clinic(
        CLINIC,
        TreatmentCompleted(referral_id=rid, on=day, outcome="completed", back_referral=True),  # type: ignore[arg-type]
        ReferralAccepted(referral_id=unknown, accepted_on=day),
    )
    await regency.as_clinic(OTHER_CLINIC, ReferralAccepted(referral_id=rid, accepted_on=day))

    # unknown referral and another clinic's answer: dead-lettered at once; completed before
    # accepted might only be early (an acceptance being redelivered), so it is retried until
    # the consumer's last attempt (PULIH_MAX_DELIVER=4 here), then dead-lettered too
    dead = await eventually(
        lambda: stream_messages(regency.nats_url, f"ibm.{REGENCY}.dlq.referral"),
        until=lambda m: len(m) >= 3,
        timeout=40,
    )
    letters = sorted((dead_letter(m)["error"], dead_letter(m)["subject"]) for m in dead)
    assert letters == [
        ("not_ready", f"ibm.{REGENCY}.clinic.{CLINIC}.treatment_completed"),
        ("other_clinic", f"ibm.{REGENCY}.clinic.{OTHER_CLINIC}.referral_accepted"),
        ("unknown_referral", f"ibm.{REGENCY}.clinic.{CLINIC}.referral_accepted"),
    ]
    early = next(dead_letter(m) for m in dead if dead_letter(m)["error"] == "not_ready")
    assert "referred cannot be completed" in early["reason"] and early["attempts"] == 4

    # each clinic is told on its own subject, once per answer, the early one included though it
    # was delivered four times; the other clinic learns only that the referral is not its own
    told = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.answer_rejected.>"),
        until=lambda e: len(e) >= 3,
    )
    answers = {str(e.id): e for e in await regency.events(f"ibm.{REGENCY}.clinic.>")}
    assert sorted(
        (e.data.clinic_id, e.data.error, answers[str(e.data.answer_id)].type, str(e.data.referral_id))
        for e in told
    ) == sorted(
        [
            (CLINIC, "not_ready", "pulih.clinic.TreatmentCompleted.v1", referral_id),
            (CLINIC, "unknown_referral", "pulih.clinic.ReferralAccepted.v1", str(unknown)),
            (OTHER_CLINIC, "other_clinic", "pulih.clinic.ReferralAccepted.v1", referral_id),
        ]
    )
    other = next(e for e in told if e.data.clinic_id == OTHER_CLINIC)
    assert other.data.reason == "this referral is not addressed to you"
    assert other.causationid == str(other.data.answer_id)

    assert await regency.referrals.get(referral_id) == before
    assert await regency.events(f"ibm.{REGENCY}.referral.referral_closed.>") == []
    assert await regency.referrals.outbox_names() == ["ReferredToClinic"] + ["AnswerRejected"] * 3

    # the consumer carries on: a legal answer still applies
    await regency.as_clinic(CLINIC, ReferralAccepted(referral_id=rid, accepted_on=day))
    await eventually(lambda: regency.referrals.get(referral_id), until=lambda r: r["status"] == "accepted")


async def test_a_clinic_answering_with_a_wrong_date_reads_why_on_its_own_consumer(regency: Regency) -> None:
    """The reference clinic, its clock set to 2999, answers at once: accepted, attended and
    completed, each dated 2999-01-01. Pulih refuses all three and changes nothing; the clinic,
    started again, reads the three ``AnswerRejected`` through its own durable consumer."""
    referral_id = await regency.refer(await regency.screened_client())
    before = await regency.referrals.get(referral_id)
    output = await run_reference_clinic(regency, "--on", "2999-01-01")
    assert "answered 1 referral(s)" in output

    told = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.answer_rejected.{CLINIC}"),
        until=lambda e: len(e) >= 3,
        timeout=20,
    )
    answers = await regency.events(f"ibm.{REGENCY}.clinic.{CLINIC}.>")
    assert [(str(e.data.answer_id), e.data.error) for e in told] == [
        (str(a.id), "date_in_future") for a in answers
    ]
    output = await run_reference_clinic(regency, count=None)
    printed = [line for line in output.splitlines() if line.startswith("rejected ")]
    assert printed == [
        f"rejected {a.type} {a.id} for referral {referral_id}: date_in_future: "
        f"{'accepted_on' if a.type.endswith('ReferralAccepted.v1') else 'on'} 2999-01-01 is after "
        "today (2026-03-01) in the regency"
        for a in answers
    ]
    assert await regency.referrals.get(referral_id) == before
    assert await regency.referrals.outbox_names() == ["ReferredToClinic"] + ["AnswerRejected"] * 3
    assert await regency.events(f"ibm.{REGENCY}.referral.*.{OTHER_CLINIC}") == []
    dead = await stream_messages(regency.nats_url, f"ibm.{REGENCY}.dlq.referral")
    assert sorted(dead_letter(m)["error"] for m in dead) == ["date_in_future"] * 3


def test_the_reference_clinic_needs_nothing_from_pulih() -> None:
    source = REFERENCE_CLINIC.read_text()
    assert not re.search(r"^\s*(from|import)\s+pulih\b", source, re.M)
    imports = set(re.findall(r"^\s*(?:from|import)\s+([a-z_]+)", source, re.M))
    assert imports <= {
        "__future__",
        "argparse",
        "asyncio",
        "json",
        "ssl",
        "sys",
        "uuid",
        "datetime",
        "pathlib",
        "typing",
        "zoneinfo",
        "jsonschema",
        "nats",
    }, imports


async def test_an_answer_over_http_is_published_once_and_not_applied_twice(regency: Regency) -> None:
    referral_id = await regency.refer(await regency.screened_client())
    r = await regency.referrals.answer(referral_id, answer="accepted", on="2026-03-02")
    assert r.status_code == 200, r.text
    [accepted] = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.clinic.{CLINIC}.referral_accepted"),
        until=lambda e: len(e) == 1,
    )
    assert str(accepted.data.referral_id) == referral_id

    async def consumer_done() -> bool:
        nc = await nats.connect(regency.nats_url)
        try:
            info = await nc.jetstream().consumer_info(f"IBM_{REGENCY}", "referral-clinic-answers")
            return info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.stream_seq > 0
        finally:
            await nc.close()

    await eventually(consumer_done, timeout=20)  # our own consumer has seen the answer come back
    assert await regency.events(f"ibm.{REGENCY}.dlq.>") == []
    assert (await regency.referrals.get(referral_id))["status"] == "accepted"


async def test_an_answer_carrying_a_nik_is_told_to_its_clinic_and_erased_from_the_stream(
    regency: Regency,
) -> None:
    """A clinic sends an answer with an extra field holding a patient's NIK. The message is no
    valid event: it is dead-lettered with the NIK redacted, the clinic is told
    (``AnswerRejected``, ``invalid_event``), and the message itself is erased from the stream,
    so the NIK is readable nowhere."""
    referral_id = await regency.refer(await regency.screened_client())
    before = await regency.referrals.get(referral_id)
    nik = "3301010201900001"
    envelope = json.loads(
        new_event(
            ReferralAccepted(referral_id=uuid.UUID(referral_id), accepted_on=date(2026, 3, 1)),
            regency=REGENCY,
        ).to_json()
    )
    envelope["data"]["extra"] = {"patient": {"nik": nik}}
    subject = f"ibm.{REGENCY}.clinic.{CLINIC}.referral_accepted"
    nc = await nats.connect(
        regency.server.url,
        user=f"clinic-{CLINIC}",
        password=CLINIC_PASSWORDS[CLINIC],
        inbox_prefix=f"_INBOX_{CLINIC}",
    )
    try:
        stored = await nc.jetstream().publish(
            subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": envelope["id"]}
        )
    finally:
        await nc.close()

    told = await eventually(
        lambda: regency.events(f"ibm.{REGENCY}.referral.answer_rejected.{CLINIC}"), timeout=20
    )
    assert [(str(e.data.answer_id), e.data.error) for e in told] == [(envelope["id"], "invalid_event")]
    assert "data.extra.patient.nik" in told[0].data.reason and nik not in told[0].data.reason
    dead = await stream_messages(regency.nats_url, f"ibm.{REGENCY}.dlq.referral")
    assert [dead_letter(m)["error"] for m in dead] == ["invalid_event"]
    assert nik not in json.dumps(dead_letter(dead[0]))

    async def still_stored() -> bool:
        nc = await nats.connect(regency.nats_url)
        try:
            await nc.jetstream().get_msg(f"IBM_{REGENCY}", stored.seq)
            return True
        except nats.js.errors.NotFoundError:
            return False
        finally:
            await nc.close()

    await eventually(still_stored, until=lambda found: not found, timeout=10)
    everything = await stream_messages(regency.nats_url, f"ibm.{REGENCY}.>")
    assert all(nik.encode() not in m.data for m in everything)
    assert await regency.referrals.get(referral_id) == before
