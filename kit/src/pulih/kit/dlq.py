"""``pulih dlq list|show|replay``: the way back from the dead-letter subjects.

A dead letter is ``pulih.<service>.EventDeadLettered.v1`` on ``ibm.<regency>.dlq.<service>``
(EVENTS.md, "Dead letters"). ``list`` and ``show`` read them; ``replay`` gives each selected one
back to the consumer that refused it, after a fix:

- **From the stream.** The original message is read again from the regency's stream at
  ``stream_seq`` (the dead letter's copy may be truncated or redacted); only where the original
  is gone is a complete copy used, and a copy that is not complete is refused.
- **Into the consumer.** It is published again on its original subject, so the consumer that
  refused it reads it again. Other consumers of that subject already hold the event in their
  inbox and skip it; the event keeps its id, so the refusing consumer's own inbox makes a second
  application a no-op as well.
- **Exactly once.** Each replay is recorded in the JetStream key-value bucket
  ``PULIH_DLQ_REPLAYS_<regency>`` under ``<service>.<dead letter id>``: ``create`` claims the key
  (only one replayer can), the message is published with ``Nats-Msg-Id`` derived from the dead
  letter's id (a replayer that crashed after publishing and retries within the stream's
  duplicate window adds no copy), and the record becomes ``replayed`` with the new stream
  sequence. A dead letter recorded as replayed is never replayed again; if it is refused once
  more, that is a new dead letter (a new ``stream_seq``), which can be replayed after the next
  fix.
- **Audited.** The record says who replayed what and when (``--by``, default ``user@host``); the
  bucket keeps each key's history (claimed, then replayed), and ``show`` prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import getpass
import json
import re
import socket
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import nats
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from pulih.contracts import CloudEvent, InvalidEvent, parse_event, stream_name
from pulih.contracts.events.dead_letters import DEAD_LETTER_EVENTS, EventDeadLettered
from pulih.kit.messaging import nats_servers, nats_tls
from pulih.kit.settings import Settings

SERVICES = tuple(model.service_name for model in DEAD_LETTER_EVENTS)
"""The services that consume events, and so may have dead letters."""

_REPLAY_IDS = uuid.UUID("5f0c2e8a-1d7b-4a0e-9c3f-6b2d8e4a7c15")
"""Namespace of replay message ids: one dead letter is always replayed under one Nats-Msg-Id."""


def replays_bucket(regency: str) -> str:
    """The key-value bucket that records every replay of ``regency``'s dead letters."""
    return f"PULIH_DLQ_REPLAYS_{regency}"


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as stored: its own stream sequence and its event."""

    seq: int
    event: CloudEvent[EventDeadLettered]

    @property
    def data(self) -> EventDeadLettered:
        return self.event.data

    @property
    def service(self) -> str:
        return self.event.data.service_name

    @property
    def key(self) -> str:
        """Its key in the replay bucket."""
        return f"{self.service}.{self.event.id}"

    def refused_event(self) -> tuple[str | None, str | None]:
        """The id and type of the refused message, where its copy names them."""
        if self.data.payload_encoding != "utf-8":
            return None, None
        try:
            message = json.loads(self.data.payload)
        except ValueError:
            return None, None
        if not isinstance(message, dict):
            return None, None
        ident, kind = message.get("id"), message.get("type")
        return (ident if isinstance(ident, str) else None, kind if isinstance(kind, str) else None)


@dataclass
class Selection:
    """Which dead letters a command is about."""

    service: str | None = None
    since: datetime | None = None
    reason: str | None = None
    ids: list[str] = field(default_factory=list)

    def matches(self, letter: DeadLetter) -> bool:
        if self.ids and not any(_names(letter, i) for i in self.ids):
            return False
        if self.service and letter.service != self.service:
            return False
        if self.since and letter.event.time < self.since:
            return False
        if self.reason:
            wanted = self.reason.lower()
            data = letter.data
            if data.error != wanted and wanted not in data.reason.lower():
                return False
        return True


def _names(letter: DeadLetter, text: str) -> bool:
    """``text`` names the dead letter: its id (or a prefix of 8+ characters), or ``#<seq>``."""
    text = text.strip().lower()
    if text.startswith("#"):
        return text[1:] == str(letter.seq)
    return len(text) >= 8 and str(letter.event.id).startswith(text)


def parse_since(text: str, timezone: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d`` ago, or an ISO date or time (the regency's time zone when it names
    none). ``ValueError`` otherwise."""
    now = now or datetime.now(UTC)
    relative = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if relative:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[relative.group(2)]
        return now - timedelta(**{unit: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give 30m, 2h, 7d or an ISO date/time such as 2026-03-02"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment


async def dead_letters(
    js: JetStreamContext, regency: str, selection: Selection | None = None
) -> list[DeadLetter]:
    """The regency's dead letters that ``selection`` matches, oldest first."""
    selection = selection or Selection()
    subject = f"ibm.{regency}.dlq.{selection.service}" if selection.service else f"ibm.{regency}.dlq.>"
    try:
        info = await js.stream_info(stream_name(regency), subjects_filter=subject)
    except NotFoundError:
        return []
    if not sum((info.state.subjects or {}).values()):
        return []
    sub = await js.subscribe(
        subject, stream=stream_name(regency), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    found: list[DeadLetter] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            try:
                event = parse_event(msg.data)
            except InvalidEvent:
                event = None
            if event is not None and isinstance(event.data, EventDeadLettered):
                letter = DeadLetter(
                    msg.metadata.sequence.stream, cast("CloudEvent[EventDeadLettered]", event)
                )
                if selection.matches(letter):
                    found.append(letter)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


async def replay_records(js: JetStreamContext, regency: str) -> KeyValue:
    """The replay bucket, made on first use (file storage, a short history per key)."""
    bucket = replays_bucket(regency)
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=bucket,
                history=16,
                storage=StorageType.FILE,
                description="who replayed which dead letter, when (pulih dlq replay)",
            )
        )


async def record_of(kv: KeyValue, letter: DeadLetter) -> tuple[dict[str, Any], int] | None:
    """The replay record of ``letter`` and its revision, or None if it was never replayed."""
    try:
        entry = await kv.get(letter.key)
    except KeyNotFoundError:
        return None
    if entry.value is None or entry.revision is None:
        return None
    return json.loads(entry.value), entry.revision


async def history_of(kv: KeyValue, letter: DeadLetter) -> list[dict[str, Any]]:
    """Every record of ``letter``, oldest first (claimed, replayed)."""
    try:
        entries = await kv.history(letter.key)
    except (KeyNotFoundError, NotFoundError):
        return []
    return [json.loads(e.value) for e in entries if e.value]


class CannotReplay(Exception):
    """The dead letter cannot be replayed: neither the original nor a complete copy exists."""


async def original_of(js: JetStreamContext, regency: str, letter: DeadLetter) -> tuple[bytes, dict[str, str]]:
    """The refused message as first published (payload and headers), from the stream; else the
    dead letter's copy where it is complete."""
    data = letter.data
    try:
        raw = await js.get_msg(stream_name(regency), data.stream_seq)
    except NotFoundError:
        raw = None
    if raw is not None and raw.subject == data.subject and raw.data is not None:
        headers = {str(k): str(v) for k, v in (raw.headers or {}).items()}
        return raw.data, headers
    if data.payload_truncated or data.payload_redacted or len(data.payload) == 0:
        raise CannotReplay(
            f"the original at stream sequence {data.stream_seq} is gone and the dead letter keeps "
            "only part of it (truncated, redacted or empty)"
        )
    if data.payload_encoding == "base64":
        return base64.b64decode(data.payload), {}
    return data.payload.encode("utf-8"), {}


def replay_msg_id(letter: DeadLetter) -> str:
    """The ``Nats-Msg-Id`` a dead letter is always replayed under."""
    return str(uuid.uuid5(_REPLAY_IDS, str(letter.event.id)))


@dataclass(frozen=True)
class Outcome:
    """What ``replay`` did with one dead letter."""

    letter: DeadLetter
    replayed: bool
    """Published again by this call (False: it had been replayed before)."""
    record: dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def replay_one(
    js: JetStreamContext, kv: KeyValue, regency: str, letter: DeadLetter, *, by: str
) -> Outcome:
    """Give ``letter``'s message back to the consumer that refused it, once (module docstring)."""
    data = letter.data
    found = await record_of(kv, letter)
    if found is not None and found[0].get("state") == "replayed":
        return Outcome(letter, False, found[0])
    event_id, event_type = letter.refused_event()
    claim = {
        "state": "claimed",
        "dead_letter": str(letter.event.id),
        "dead_letter_seq": letter.seq,
        "service": letter.service,
        "consumer": data.consumer,
        "subject": data.subject,
        "stream_seq": data.stream_seq,
        "error": data.error,
        "event_id": event_id,
        "event_type": event_type,
        "by": by,
        "at": _now(),
    }
    if found is None:
        try:
            revision = await kv.create(letter.key, json.dumps(claim).encode())
        except KeyWrongLastSequenceError:  # another replayer claimed it first
            again = await record_of(kv, letter)
            if again is None:
                raise
            if again[0].get("state") == "replayed":
                return Outcome(letter, False, again[0])
            claim, revision = again
    else:  # claimed by a replayer that stopped before recording: finish its work
        claim, revision = found
    payload, headers = await original_of(js, regency, letter)
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("nats-")}
    headers.update(
        {
            "Nats-Msg-Id": replay_msg_id(letter),
            "Pulih-Replay-Of": str(letter.event.id),
            "Pulih-Replay-For": data.consumer,
            "Pulih-Replayed-By": by,
        }
    )
    ack = await js.publish(data.subject, payload, timeout=5.0, stream=stream_name(regency), headers=headers)
    done = {**claim, "state": "replayed", "replay_seq": ack.seq, "replayed_by": by, "replayed_at": _now()}
    try:
        await kv.update(letter.key, json.dumps(done).encode(), last=revision)
    except KeyWrongLastSequenceError:  # a concurrent replayer recorded the same publish
        again = await record_of(kv, letter)
        return Outcome(letter, False, again[0] if again else done)
    return Outcome(letter, True, done)


async def replay(
    js: JetStreamContext, regency: str, selection: Selection, *, by: str
) -> tuple[list[Outcome], list[tuple[DeadLetter, str]]]:
    """Replay every selected dead letter in the order their originals were published (a parent
    before what depends on it); return what was done and what could not be replayed."""
    kv = await replay_records(js, regency)
    letters = sorted(await dead_letters(js, regency, selection), key=lambda d: d.data.stream_seq)
    outcomes: list[Outcome] = []
    refused: list[tuple[DeadLetter, str]] = []
    for letter in letters:
        try:
            outcomes.append(await replay_one(js, kv, regency, letter, by=by))
        except CannotReplay as exc:
            refused.append((letter, str(exc)))
    return outcomes, refused


# --- printing -------------------------------------------------------------------------------


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def list_line(letter: DeadLetter, record: dict[str, Any] | None) -> str:
    """One dead letter on one line."""
    data = letter.data
    _, kind = letter.refused_event()
    state = "-"
    if record is not None:
        state = f"replayed {record.get('replayed_at', '?')} by {record.get('replayed_by', '?')}"
        if record.get("state") != "replayed":
            state = f"replay unfinished ({record.get('by', '?')})"
    return (
        f"{str(letter.event.id)[:8]}  #{letter.seq}  {letter.event.time.isoformat(timespec='seconds')}  "
        f"{data.consumer}  {data.error}  {kind or '?'} @{data.stream_seq}  x{data.attempts}  "
        f"[{state}]  {_short(data.reason, 80)}"
    )


def show_text(letter: DeadLetter, history: Sequence[dict[str, Any]]) -> str:
    """Everything about one dead letter, for a person."""
    data = letter.data
    event_id, kind = letter.refused_event()
    lines = [
        f"dead letter   {letter.event.id} (#{letter.seq} on ibm.<regency>.dlq.{letter.service})",
        f"at            {letter.event.time.isoformat()}",
        f"consumer      {data.consumer}",
        f"error         {data.error}",
        f"reason        {data.reason}",
        f"attempts      {data.attempts}",
        f"message       {kind or '?'} {event_id or ''} on {data.subject}, stream sequence {data.stream_seq}",
        f"copy          {data.payload_size} bytes, {data.payload_encoding}"
        + (", truncated" if data.payload_truncated else "")
        + (", identity redacted" if data.payload_redacted else ""),
    ]
    if history:
        lines.append("replays")
        for record in history:
            if record.get("state") == "replayed":
                lines.append(
                    f"  replayed {record.get('replayed_at')} by {record.get('replayed_by')} "
                    f"as stream sequence {record.get('replay_seq')}"
                )
            else:
                lines.append(f"  claimed {record.get('at')} by {record.get('by')}")
    else:
        lines.append("replays       none")
    lines.append("payload (the dead letter's copy)")
    payload = data.payload
    if data.payload_encoding == "utf-8":
        with contextlib.suppress(ValueError):
            payload = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    lines.append(payload)
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add ``pulih dlq`` to the command's subparsers."""
    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay after a fix")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    for name, text in (
        ("list", "list dead letters, oldest first"),
        ("show", "everything about some dead letters, with their replays"),
        ("replay", "give dead letters back to the consumer that refused them, once each (audited)"),
    ):
        p = dlq_sub.add_parser(name, help=text)
        p.add_argument("ids", nargs="*", help="dead letter ids (8+ first characters) or #<sequence>")
        p.add_argument("--service", choices=SERVICES, help="only this service's dead letters")
        p.add_argument("--since", help="only those since: 30m, 2h, 7d, or an ISO date/time")
        p.add_argument("--reason", help="only those with this error code, or with this text in the reason")
        if name == "replay":
            p.add_argument(
                "--all", action="store_true", help="replay every dead letter (no selection needed)"
            )
            p.add_argument("--by", help="who replays, for the audit (default: user@host)")


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since, settings.timezone) if args.since else None
    except ValueError as exc:
        print(f"pulih: {exc}", file=sys.stderr)
        return 2
    selection = Selection(service=args.service, since=since, reason=args.reason, ids=list(args.ids))
    command = args.dlq_command
    if command == "show" and not selection.ids:
        print("pulih: dlq show needs dead letter ids (see dlq list)", file=sys.stderr)
        return 2
    if command == "replay" and not (selection.ids or args.service or since or args.reason or args.all):
        print(
            "pulih: dlq replay needs ids, a filter (--service, --since, --reason) or --all", file=sys.stderr
        )
        return 2
    nc = await nats.connect(nats_servers(settings.nats_url), connect_timeout=3, tls=nats_tls(settings))
    try:
        js = nc.jetstream()
        regency = settings.regency
        if command == "replay":
            outcomes, refused = await replay(js, regency, selection, by=args.by or _who())
            for outcome in outcomes:
                letter, record = outcome.letter, outcome.record
                if outcome.replayed:
                    print(
                        f"replayed {str(letter.event.id)[:8]} ({letter.data.error}) to "
                        f"{letter.data.consumer}: {letter.data.subject} as stream sequence "
                        f"{record['replay_seq']}"
                    )
                else:
                    print(
                        f"skipped  {str(letter.event.id)[:8]}: already replayed {record.get('replayed_at')} "
                        f"by {record.get('replayed_by')}"
                    )
            for letter, why in refused:
                print(f"refused  {str(letter.event.id)[:8]}: {why}", file=sys.stderr)
            done = sum(o.replayed for o in outcomes)
            print(f"{done} replayed, {len(outcomes) - done} already replayed, {len(refused)} refused")
            return 1 if refused else 0
        letters = await dead_letters(js, regency, selection)
        kv = await replay_records(js, regency)
        if command == "list":
            for letter in letters:
                found = await record_of(kv, letter)
                print(list_line(letter, found[0] if found else None))
            print(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}")
            return 0
        if not letters:
            print("pulih: no such dead letter", file=sys.stderr)
            return 1
        print("\n\n".join([show_text(letter, await history_of(kv, letter)) for letter in letters]))
        return 0
    finally:
        await nc.close()


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``pulih dlq …``; return the exit code."""
    return asyncio.run(_run(settings, args))
