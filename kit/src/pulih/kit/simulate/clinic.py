"""The simulator's clinics: they answer the referrals addressed to them over NATS, with the
reference clinic's protocol (``deploy/examples/clinic/clinic.py``; README, "Clinics: connecting").

Each clinic connects as its own user ``clinic-<clinic_id>`` (no user on a development server)
with the inbox prefix ``_INBOX_<clinic_id>``, reads its referrals through its durable pull
consumer ``clinic-<clinic_id>`` on ``IBM_<regency>``, filtered to
``ibm.<regency>.referral.*.<clinic_id>``, and publishes its answers as CloudEvents on
``ibm.<regency>.clinic.<clinic_id>.<event_name>``, each with a ``Nats-Msg-Id`` header, naming the
referral's event as their cause. An ``AnswerRejected`` it receives is kept in
:attr:`SimulatedClinics.refused`.

What a clinic does with a referral is decided when the referral is made
(:meth:`SimulatedClinics.plan`, with the simulator's seeded random numbers, so a seed gives the
same answers), drawn from the scenario's ``[clinic]`` shares (:class:`ClinicShares`); each answer
is dated, and published once the regency's clocks have reached its date
(:meth:`SimulatedClinics.answer_due`), as a clinic recording it that day would.

The simulator moves the clocks a day at a time while referrals are open: each day it calls
:meth:`~SimulatedClinics.answer_due` for that day, then :meth:`~SimulatedClinics.settle` before
the next move, so an answer in time is applied before ``respond_by`` passes, and only the late or
missing ones are escalated, the same ones for the same seed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from pulih.contracts import stream_name, subject_for
from pulih.contracts.codes import DeclineReason, TreatmentOutcome
from pulih.contracts.envelope import new_event
from pulih.contracts.event import Event
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.kit.simulate.api import SimulationError

REFERRED = "pulih.referral.ReferredToClinic.v1"
REJECTED = "pulih.referral.AnswerRejected.v1"
ARRIVAL_SECONDS = 30.0
"""How long a clinic waits for a referral it must answer to reach its consumer."""
APPOINTMENT_DAYS = (2, 7)
"""Days from acceptance to the appointment, where the client attends."""
TREATMENT_DAYS = (14, 35)
"""Days of outpatient treatment, from attendance to completion."""
LATE_DAYS = (1, 4)
"""Days after ``respond_by`` a late clinic accepts."""
SETTLE_SECONDS = 30.0
"""How long :meth:`SimulatedClinics.settle` waits for the referral service to apply the answers."""
APPLIED = {
    ReferralAccepted: frozenset({"accepted", "attended", "completed"}),
    ClientAttended: frozenset({"attended", "completed"}),
    TreatmentCompleted: frozenset({"completed"}),
    ReferralDeclined: frozenset({"declined"}),
}
"""The statuses a referral may show once the referral service has applied an answer (a cancelled
referral refuses the answers still to come: it is settled too)."""

StatusOf = Callable[[str, str], Awaitable[str]]
"""Reads a referral's status (clinic id, referral id → ``status``), e.g. with the clinic's token
from ``GET /v1/referrals/{referral_id}``."""


class Outcome(StrEnum):
    """What a clinic does with a referral (the scenario's ``[clinic]`` shares name these)."""

    ACCEPTED = "accepted"
    """Accepted by ``respond_by``, attended, treatment completed."""
    DECLINED = "declined"
    """Declined by ``respond_by`` (no capacity, not indicated, out of area): escalated."""
    LATE = "late"
    """Accepted after ``respond_by`` (the referral is escalated first), attended, completed."""
    SILENT = "silent"
    """Never answered: escalated after ``respond_by``, then overdue."""


class ClinicShares(Protocol):
    """The scenario's ``[clinic]`` table: the share of each :class:`Outcome` (adding up to 1),
    and of the completed treatments that end with a back referral to the unit."""

    @property
    def accepted(self) -> float: ...
    @property
    def declined(self) -> float: ...
    @property
    def late(self) -> float: ...
    @property
    def silent(self) -> float: ...
    @property
    def back_referral(self) -> float: ...


class ClinicError(SimulationError):
    """A simulated clinic cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class ClinicAccess:
    """How one simulated clinic reaches its regency's NATS server."""

    url: str
    regency: str
    clinic_id: str
    password: str | None = None
    """The clinic user's password; None on a development server without users (``pulih up``)."""

    @property
    def user(self) -> str:
        """The clinic's NATS user, also its durable consumer's name."""
        return f"clinic-{self.clinic_id}"


@dataclass(order=True)
class Answer:
    """One answer of a clinic, due on ``on`` (``order`` keeps a referral's answers in sequence)."""

    on: date
    order: int
    clinic_id: str = field(compare=False)
    referral_id: str = field(compare=False)
    data: Event = field(compare=False)


@dataclass
class _Connected:
    access: ClinicAccess
    nc: Client
    js: JetStreamContext
    subscription: JetStreamContext.PullSubscription


def draw_outcome(rng: random.Random, shares: ClinicShares) -> Outcome:
    """One outcome, drawn with the ``shares`` as weights (in :class:`Outcome`'s order)."""
    weights = [max(0.0, float(getattr(shares, o.value))) for o in Outcome]
    if sum(weights) <= 0:
        raise ValueError("the clinic's shares (accepted, declined, late, silent) add up to nothing")
    point = rng.random() * sum(weights)
    for outcome, weight in zip(Outcome, weights, strict=True):
        if point < weight:
            return outcome
        point -= weight
    return next(o for o, w in zip(reversed(Outcome), reversed(weights), strict=True) if w > 0)


class SimulatedClinics:
    """The simulated clinics of one regency: connect with ``async with``, :meth:`plan` each
    referral as it is made, :meth:`answer_due` as the clocks move.

    ``published`` holds the answers sent, ``counted`` what they add to the reporting's indicators
    by month (``referrals_accepted``, ``referrals_completed``, ``back_referrals``), ``refused``
    the ``AnswerRejected`` the clinics received.
    """

    def __init__(self, clinics: Sequence[ClinicAccess], shares: ClinicShares) -> None:
        self.clinics = {access.clinic_id: access for access in clinics}
        self.shares = shares
        draw_outcome(random.Random(0), shares)  # the shares are checked before anything runs
        self.pending: list[Answer] = []
        self.published: list[Answer] = []
        self.counted: dict[str, Counter[str]] = {}
        self.refused: list[str] = []
        self.outcomes: Counter[Outcome] = Counter()
        self._received: dict[str, dict[str, Any]] = {}
        self._connected: dict[str, _Connected] = {}
        self._order = 0
        self._unsettled: list[Answer] = []

    async def __aenter__(self) -> SimulatedClinics:
        try:
            for access in self.clinics.values():
                self._connected[access.clinic_id] = await _connect(access)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect every clinic."""
        for connected in self._connected.values():
            await connected.nc.close()
        self._connected.clear()

    def plan(self, rng: random.Random, referral: Mapping[str, Any]) -> Outcome:
        """Decide, with ``rng``, what the clinic does with ``referral`` (the referral service's
        answer to ``POST /v1/referrals``: ``referral_id``, ``clinic_id``, ``referred_on``,
        ``respond_by``) and date its answers."""
        referral_id = str(referral["referral_id"])
        clinic_id = str(referral["clinic_id"])
        if clinic_id not in self.clinics:
            raise ClinicError(f"referral {referral_id} went to {clinic_id}, which no simulated clinic is")
        referred_on = date.fromisoformat(str(referral["referred_on"]))
        respond_by = date.fromisoformat(str(referral["respond_by"]))
        outcome = draw_outcome(rng, self.shares)
        self.outcomes[outcome] += 1
        if outcome is Outcome.SILENT:
            return outcome
        in_time = referred_on + timedelta(days=rng.randint(0, min(2, (respond_by - referred_on).days)))
        rid = UUID(referral_id)
        if outcome is Outcome.DECLINED:
            reason = rng.choice(list(DeclineReason))
            self._add(
                clinic_id, referral_id, in_time, ReferralDeclined(referral_id=rid, on=in_time, reason=reason)
            )
            return outcome
        late = outcome is Outcome.LATE
        accepted = respond_by + timedelta(days=rng.randint(*LATE_DAYS)) if late else in_time
        back = rng.random() < self.shares.back_referral
        attended = accepted + timedelta(days=rng.randint(*APPOINTMENT_DAYS))
        completed = attended + timedelta(days=rng.randint(*TREATMENT_DAYS))
        accept = ReferralAccepted(referral_id=rid, accepted_on=accepted, appointment_on=attended)
        self._add(clinic_id, referral_id, accepted, accept)
        self._add(clinic_id, referral_id, attended, ClientAttended(referral_id=rid, on=attended))
        done = TreatmentCompleted(
            referral_id=rid, on=completed, outcome=TreatmentOutcome.COMPLETED, back_referral=back
        )
        self._add(clinic_id, referral_id, completed, done)
        return outcome

    def _add(self, clinic_id: str, referral_id: str, on: date, data: Event) -> None:
        self._order += 1
        self.pending.append(Answer(on, self._order, clinic_id, referral_id, data))
        self.pending.sort()

    async def answer_due(self, until: date) -> int:
        """Publish, in order, every answer dated ``until`` or earlier, each once its clinic has
        read the referral it answers; read what else waits on the clinics' consumers. Returns
        how many answers were published."""
        await self._read_all()
        due = [a for a in self.pending if a.on <= until]
        self.pending = [a for a in self.pending if a.on > until]
        for answer in due:
            referral = await self._referral(answer)
            await self._publish(answer, referral)
        return len(due)

    async def _publish(self, answer: Answer, referral: dict[str, Any]) -> None:
        connected = self._connected[answer.clinic_id]
        regency = connected.access.regency
        envelope = new_event(
            answer.data,
            regency=regency,
            correlationid=referral.get("correlationid") or str(referral["id"]),
            causationid=str(referral["id"]),
        )
        subject = subject_for(envelope, regency, clinic_id=answer.clinic_id)
        try:
            await connected.js.publish(subject, envelope.to_json(), headers={"Nats-Msg-Id": str(envelope.id)})
        except NatsError as exc:
            raise ClinicError(
                f"clinic {answer.clinic_id} could not publish on {subject} at {connected.access.url}: {exc!r}"
            ) from None
        self.published.append(answer)
        self._unsettled.append(answer)
        self._count(answer)

    async def settle(self, status_of: StatusOf, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until the referral service has applied every answer published since the last
        call (``status_of`` reads a referral's status). Call it before the clocks move on: an
        answer in time still on its way when they pass ``respond_by`` would see its referral
        escalated, and the same seed would not give the same counts."""
        last: dict[str, Answer] = {}
        for answer in self._unsettled:
            last[answer.referral_id] = answer
        deadline = time.monotonic() + timeout
        while last:
            for referral_id, answer in list(last.items()):
                status = await status_of(answer.clinic_id, referral_id)
                if status in APPLIED[type(answer.data)] or status == "cancelled":
                    del last[referral_id]
            if not last:
                break
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{a.data.event_name()} of {r}" for r, a in last.items())
                raise ClinicError(
                    f"the referral service has not applied {waiting} in {timeout:.0f} s; "
                    f"refused so far: {self.refused or 'none'}"
                )
            await asyncio.sleep(0.05)
            await self._read_all()
        self._unsettled.clear()

    def _count(self, answer: Answer) -> None:
        period = f"{answer.on:%Y-%m}"
        counted = self.counted.setdefault(period, Counter())
        if isinstance(answer.data, ReferralAccepted):
            counted["referrals_accepted"] += 1
        elif isinstance(answer.data, TreatmentCompleted):
            counted["referrals_completed"] += 1
            counted["back_referrals"] += answer.data.back_referral

    async def _referral(self, answer: Answer) -> dict[str, Any]:
        """The ``ReferredToClinic`` ``answer`` answers, read from its clinic's consumer (waiting
        up to :data:`ARRIVAL_SECONDS` for it)."""
        deadline = time.monotonic() + ARRIVAL_SECONDS
        connected = self._connected[answer.clinic_id]
        while answer.referral_id not in self._received:
            if time.monotonic() > deadline:
                raise ClinicError(
                    f"referral {answer.referral_id} has not reached clinic {answer.clinic_id}'s consumer "
                    f"{connected.access.user} in {ARRIVAL_SECONDS:.0f} s: is the referral service's outbox "
                    "relay publishing?"
                )
            await self._read(connected, wait=1.0)
        return self._received[answer.referral_id]

    async def _read_all(self) -> None:
        for connected in self._connected.values():
            while await self._read(connected, wait=0.05):
                pass

    async def _read(self, connected: _Connected, *, wait: float) -> int:
        """Read what waits on one clinic's consumer (up to ``wait`` seconds for a first message):
        referrals kept by id, refusals noted, the rest acknowledged. Returns how many were read."""
        try:
            messages = await connected.subscription.fetch(50, timeout=wait)
        except (NatsTimeout, TimeoutError):  # nats-py raises either when nothing comes
            return 0
        for msg in messages:
            event = json.loads(msg.data)
            if event.get("type") == REFERRED:
                self._received[str(event["data"]["referral_id"])] = event
            elif event.get("type") == REJECTED:
                data = event.get("data") or {}
                self.refused.append(
                    f"{connected.access.clinic_id}: {data.get('answer_type')} for referral "
                    f"{data.get('referral_id')}: {data.get('error')}: {data.get('reason')}"
                )
            await msg.ack()
        return len(messages)


async def _connect(access: ClinicAccess) -> _Connected:
    """Connect as the clinic and bind its durable consumer, as the reference clinic does."""
    credentials = {"user": access.user, "password": access.password} if access.password else {}
    try:
        nc = await nats.connect(
            access.url,
            **credentials,
            inbox_prefix=f"_INBOX_{access.clinic_id}",
            name=access.user,
            connect_timeout=5,
            allow_reconnect=False,
        )
    except (NatsError, OSError) as exc:
        raise ClinicError(
            f"clinic {access.clinic_id} cannot connect to {access.url} as {access.user} ({exc!r}): "
            "is the regency's NATS server running?"
        ) from None
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe(
            f"ibm.{access.regency}.referral.*.{access.clinic_id}",
            durable=access.user,
            stream=stream_name(access.regency),
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=10, ack_wait=60),
        )
    except NatsError as exc:
        await nc.close()
        raise ClinicError(
            f"clinic {access.clinic_id} cannot read its consumer {access.user} on "
            f"{stream_name(access.regency)} at {access.url}: {exc!r}"
        ) from None
    return _Connected(access, nc, js, subscription)
