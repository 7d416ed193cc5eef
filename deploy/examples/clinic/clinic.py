#!/usr/bin/env python3
"""A reference clinic: receives the referrals addressed to it over NATS and answers them.

Copy it: it needs nothing from Pulih but the JSON Schemas in ``contracts/schemas/`` and two
packages, ``nats-py`` and ``jsonschema``. It

1. connects with the clinic's NATS user (``deploy/nats/clinic_users.py`` makes one), using the
   inbox prefix ``_INBOX_<clinic_id>`` its permissions allow;
2. reads its referrals through its own durable pull consumer ``clinic-<clinic_id>`` on the
   regency's stream ``IBM_<regency>``, filtered to ``ibm.<regency>.referral.*.<clinic_id>``;
3. validates each ``ReferredToClinic`` against ``ReferredToClinic.v1.json``;
4. answers with CloudEvents it builds itself, published to
   ``ibm.<regency>.clinic.<clinic_id>.<event_name>`` with a ``Nats-Msg-Id`` header (so a
   retried publish is stored once): accepted → attended → completed with back referral, or
   declined with ``--decline``; then acknowledges the referral;
5. prints each ``AnswerRejected`` it receives on the same consumer: Pulih refused one of its
   answers (dated in the future or before the answer it follows, out of order, not its
   referral…) and applied nothing of it; the line names the answer, the code and the reason, so
   the clinic can correct its record and publish the answer again.

    python clinic.py --url nats://127.0.0.1:14222 --user clinic-klinik-pratama-demo \
        --password "$CLINIC_NATS_PASSWORD" --clinic klinik-pratama-demo --regency 3301 --count 1

A real clinic would record the referral in its own system and publish each answer when it
happens (acceptance today, attendance at the appointment, completion weeks later); this one
answers at once so the whole loop can be watched in a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

REFERRED = "pulih.referral.ReferredToClinic.v1"
REJECTED = "pulih.referral.AnswerRejected.v1"
DEFAULT_SCHEMAS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


def snake(name: str) -> str:
    """``ReferralAccepted`` → ``referral_accepted``: the event's token in subjects."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class Clinic:
    """One clinic's connection, schemas and answering policy."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.schemas = Path(args.schemas)
        self.validators: dict[str, jsonschema.Draft202012Validator] = {}

    def validator(self, event_name: str) -> jsonschema.Draft202012Validator:
        if event_name not in self.validators:
            schema = json.loads((self.schemas / f"{event_name}.v1.json").read_text())
            self.validators[event_name] = jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        return self.validators[event_name]

    def event(self, event_name: str, referral: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """A CloudEvent of this clinic answering ``referral`` (the ReferredToClinic it received),
        checked against its schema before it leaves. It carries the referral's correlationid on
        and names the referral as its cause, so Pulih can follow the whole chain."""
        referral_id = referral["data"]["referral_id"]
        envelope = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/pulih/{self.args.regency}/clinic",
            "type": f"pulih.clinic.{event_name}.v1",
            "subject": referral_id,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "regency": self.args.regency,
            "correlationid": referral.get("correlationid") or referral["id"],
            "causationid": referral["id"],
            "data": data,
        }
        self.validator(event_name).validate(envelope)
        return envelope

    async def publish(self, js: Any, event_name: str, referral: dict[str, Any], data: dict[str, Any]) -> None:
        envelope = self.event(event_name, referral, data)
        referral_id = data["referral_id"]
        subject = f"ibm.{self.args.regency}.clinic.{self.args.clinic}.{snake(event_name)}"
        await js.publish(subject, json.dumps(envelope).encode(), headers={"Nats-Msg-Id": envelope["id"]})
        print(f"answered {event_name} for referral {referral_id} on {subject}", flush=True)

    def answer_date(self, referred_on: str) -> str:
        """Today in the regency (or ``--on``), never before the referral."""
        today = self.args.on or datetime.now(ZoneInfo(self.args.timezone)).date().isoformat()
        return max(today, date.fromisoformat(referred_on).isoformat())

    async def answer(self, js: Any, referral: dict[str, Any]) -> None:
        data = referral["data"]
        referral_id = data["referral_id"]
        on = self.answer_date(data["referred_on"])
        if self.args.decline:
            await self.publish(
                js,
                "ReferralDeclined",
                referral,
                {"referral_id": referral_id, "on": on, "reason": "no_capacity"},
            )
            return
        await self.publish(
            js,
            "ReferralAccepted",
            referral,
            {"referral_id": referral_id, "accepted_on": on, "appointment_on": on},
        )
        await self.publish(js, "ClientAttended", referral, {"referral_id": referral_id, "on": on})
        await self.publish(
            js,
            "TreatmentCompleted",
            referral,
            {
                "referral_id": referral_id,
                "on": on,
                "outcome": "completed",
                "back_referral": not self.args.no_back_referral,
            },
        )

    def rejected(self, event: dict[str, Any]) -> None:
        """Pulih refused one of this clinic's answers: say which, and why."""
        try:
            self.validator("AnswerRejected").validate(event)
        except jsonschema.ValidationError as exc:
            print(f"an invalid AnswerRejected: {exc.message}", file=sys.stderr)
        data = event.get("data") or {}
        print(
            f"rejected {data.get('answer_type')} {data.get('answer_id')} for referral "
            f"{data.get('referral_id')}: {data.get('error')}: {data.get('reason')}",
            flush=True,
        )

    async def run(self) -> int:
        args = self.args
        credentials = {"user": args.user, "password": args.password} if args.password else {}
        nc = await nats.connect(
            args.url,
            **credentials,
            inbox_prefix=f"_INBOX_{args.clinic}",
            name=f"clinic-{args.clinic}",
            connect_timeout=5,
            tls=ssl.create_default_context(cafile=args.ca) if args.ca else None,
        )
        try:
            js = nc.jetstream()
            subscription = await js.pull_subscribe(
                f"ibm.{args.regency}.referral.*.{args.clinic}",
                durable=f"clinic-{args.clinic}",
                stream=f"IBM_{args.regency}",
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=10, ack_wait=60),
            )
            answered = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + args.timeout
            while loop.time() < deadline and (args.count is None or answered < args.count):
                try:
                    messages = await subscription.fetch(10, timeout=1)
                except NatsTimeout:
                    if args.count is None:
                        break  # nothing pending: --count not given means "what is there now"
                    continue
                for msg in messages:
                    event = json.loads(msg.data)
                    if event.get("type") == REJECTED:
                        self.rejected(event)
                        await msg.ack()
                        continue
                    if event.get("type") != REFERRED:
                        print(f"noted {event.get('type')} for referral {event.get('subject')}", flush=True)
                        await msg.ack()
                        continue
                    try:
                        self.validator("ReferredToClinic").validate(event)
                    except jsonschema.ValidationError as exc:
                        print(f"refused an invalid referral on {msg.subject}: {exc.message}", file=sys.stderr)
                        await msg.term()
                        continue
                    await self.answer(js, event)
                    await msg.ack()
                    answered += 1
            print(f"answered {answered} referral(s)", flush=True)
            return 0 if args.count is None or answered >= args.count else 1
        finally:
            await nc.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A reference clinic answering Pulih referrals over NATS")
    parser.add_argument("--url", default="nats://127.0.0.1:14222", help="the regency's NATS server")
    parser.add_argument("--ca", help="the regency's CA certificate (ca.pem) when its server uses TLS")
    parser.add_argument("--user", help="the clinic's NATS user (default clinic-<clinic id>)")
    parser.add_argument("--password", help="the clinic's NATS password (none: a development server)")
    parser.add_argument("--clinic", required=True, help="the clinic's id (slug)")
    parser.add_argument("--regency", default="3301", help="Kemendagri regency code without dots")
    parser.add_argument("--schemas", default=str(DEFAULT_SCHEMAS), help="directory of the JSON Schemas")
    parser.add_argument("--decline", action="store_true", help="decline every referral (no capacity)")
    parser.add_argument(
        "--no-back-referral", action="store_true", help="complete without sending the client back"
    )
    parser.add_argument("--on", help="answer date YYYY-MM-DD (default: today in the regency)")
    parser.add_argument("--timezone", default="Asia/Jakarta", help="the regency's time zone")
    parser.add_argument("--count", type=int, help="stop after answering this many referrals (waits for them)")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    args.user = args.user or f"clinic-{args.clinic}"
    return asyncio.run(Clinic(args).run())


if __name__ == "__main__":
    sys.exit(main())
