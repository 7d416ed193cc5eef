"""``pulih events tail``: print the regency's events as they arrive, one line each, or the last
few already in the stream (``--last N``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.messaging import nats_servers, without_password

_DEAD_LETTER_TYPE = ".EventDeadLettered.v"
_SHOWN_PAYLOAD = 200


def one_line(subject: str, payload: bytes) -> str:
    """A short line for one event: time, type, what it is about, and its data.

    A dead letter shows why its consumer gave up and the beginning of the refused message
    instead of its whole data (which can hold 64 KiB of that message).
    """
    try:
        event = json.loads(payload)
        head = f"{event.get('time', '?')}  {event.get('type', '?')}  subject={event.get('subject', '?')}"
        if _DEAD_LETTER_TYPE in str(event.get("type")) and isinstance(event.get("data"), dict):
            return f"{head}  {_dead_letter(event['data'])}"
        data = json.dumps(event.get("data"), separators=(",", ":"), ensure_ascii=False)
        return f"{head}  {data}"
    except (ValueError, AttributeError):
        return f"{subject}  {payload[:_SHOWN_PAYLOAD]!r}"


def _dead_letter(data: dict[str, object]) -> str:
    """``error by consumer (seq N, K attempts): reason | payload …``, on one line."""
    marks = [str(data.get("payload_encoding", "?"))]
    marks += [mark for mark in ("truncated", "redacted") if data.get(f"payload_{mark}")]
    payload = " ".join(str(data.get("payload", "")).split())
    if len(payload) > _SHOWN_PAYLOAD:
        payload = payload[:_SHOWN_PAYLOAD] + "…"
    reason = " ".join(str(data.get("reason", "")).split())
    attempts = data.get("attempts", "?")
    return (
        f"{data.get('error', '?')} by {data.get('consumer', '?')} "
        f"(seq {data.get('stream_seq', '?')}, {attempts} attempt{'' if attempts == 1 else 's'}): {reason}"
        f"  | payload ({', '.join(marks)}, {data.get('payload_size', '?')} bytes): {payload}"
    )


async def last_events(js: JetStreamContext, stream: str, subject: str, count: int) -> list[Msg]:
    """The last ``count`` messages of ``stream`` on ``subject`` (wildcards allowed), oldest first.

    It looks back over a window at the end of the stream, four times wider each time, until the
    window holds ``count`` of them or reaches the first message: a long stream is not read from
    its beginning to show its end.
    """
    state = (await js.stream_info(stream)).state
    if state.messages == 0 or count < 1:
        return []
    window = count
    while True:
        start = max(state.first_seq, state.last_seq - window + 1)
        sub = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
            ),
        )
        info = await sub.consumer_info()
        try:
            pending = info.num_pending or 0
            if pending >= count or start <= state.first_seq:
                messages: list[Msg] = []
                while len(messages) < pending:
                    messages += await sub.fetch(min(pending - len(messages), 256), timeout=5)
                return messages[-count:]
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, info.name)
        window *= 4


async def tail(
    nats_url: str,
    regency: str,
    *,
    replay_all: bool,
    subject: str | None,
    limit: int | None,
    last: int | None = None,
) -> None:
    """Follow the stream (from now, or from the start with ``replay_all``) until interrupted, or
    print its ``last`` events and stop."""
    nc = await connect_once(nats_url)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(stream_name(regency))
        except NotFoundError:
            raise Unreachable(
                f"{nats_url} has no stream {stream_name(regency)}: no service of regency {regency} ran there"
            ) from None
        if last is not None:
            for msg in await last_events(
                js, stream_name(regency), subject or regency_subjects(regency), last
            ):
                print(one_line(msg.subject, msg.data), flush=True)
            return
        sub = await js.subscribe(
            subject or regency_subjects(regency),
            stream=stream_name(regency),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL if replay_all else DeliverPolicy.NEW,
        )
        seen = 0
        while limit is None or seen < limit:
            try:
                msg = await sub.next_msg(timeout=3600)
            except TimeoutError:
                continue
            print(one_line(msg.subject, msg.data), flush=True)
            seen += 1
    finally:
        await nc.close()


class Unreachable(Exception):
    """No NATS server answers at the URL, or it holds no stream of the regency."""


async def connect_once(nats_url: str) -> Client:
    """Connect to ``nats_url`` or raise :class:`Unreachable` at once: a command-line tool says
    so instead of retrying for minutes (``NATS_URL``, or ``PULIH_NATS_PORT`` for ``pulih up``)."""

    async def quiet(_: Exception) -> None:
        return None

    try:
        return await asyncio.wait_for(
            nats.connect(nats_servers(nats_url), connect_timeout=3, allow_reconnect=False, error_cb=quiet),
            timeout=5,
        )
    except Exception as exc:
        where = without_password(nats_url)
        raise Unreachable(f"no NATS server answers at {where} ({type(exc).__name__})") from None


def run_tail(
    nats_url: str,
    regency: str,
    *,
    replay_all: bool,
    subject: str | None,
    limit: int | None,
    last: int | None = None,
) -> int:
    """Blocking entry point for the command line; 1 when NATS cannot be reached."""
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(
                tail(nats_url, regency, replay_all=replay_all, subject=subject, limit=limit, last=last)
            )
        except Unreachable as exc:
            print(f"pulih: {exc}; is the regency running? (set NATS_URL or PULIH_NATS_PORT)", file=sys.stderr)
            return 1
    return 0
