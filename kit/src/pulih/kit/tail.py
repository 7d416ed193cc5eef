"""``pulih events tail``: print the regency's events as they arrive, one line each, or the last
few already in the stream (``--last N``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.messaging import nats_servers, without_password
from pulih.kit.settings import DEFAULT_NATS_PORT, Settings

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


def regency_nats_url(settings: Settings) -> str:
    """The NATS server of the regency, found as ``pulih up`` finds it.

    ``NATS_URL`` when set; otherwise ``pulih up``'s embedded server on ``PULIH_NATS_PORT``; without
    that either, on the port the data dir's last ``pulih up`` gave it (``--nats-port``, read from
    the config it wrote under ``<data dir>/nats/``), and 14222 when nothing ran there yet.
    """
    if "NATS_URL" in os.environ:
        return settings.nats_url
    port = os.environ.get("PULIH_NATS_PORT") or _embedded_port(settings.data_dir) or DEFAULT_NATS_PORT
    return f"nats://127.0.0.1:{port}"


def _embedded_port(data_dir: Path) -> int | None:
    """The port in the ``listen`` line of the config ``pulih up`` wrote for its NATS server."""
    try:
        config = (data_dir / "nats" / "nats-server.conf").read_text()
    except OSError:
        return None
    found = re.search(r"^listen:\s*\S*?:(\d+)\s*$", config, re.M)
    return int(found.group(1)) if found else None


async def connect_once(nats_url: str) -> Client:
    """Connect to ``nats_url`` or raise :class:`Unreachable` within seconds: a command-line tool
    says so, with the last reason (refused, timed out, …), instead of retrying for minutes.

    Each server of the URL gets two tries, half a second apart, and the client's own error
    callback stays quiet: the reason is told once, by the caller.
    """
    reasons: list[Exception] = []

    async def remember(exc: Exception) -> None:
        reasons.append(exc)

    try:
        return await asyncio.wait_for(
            nats.connect(
                nats_servers(nats_url),
                connect_timeout=3,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                error_cb=remember,
            ),
            timeout=10,
        )
    except Exception as exc:
        reason = reasons[-1] if reasons else exc
        text = " ".join(str(reason).split()) or type(reason).__name__
        where = without_password(nats_url)
        raise Unreachable(f"no NATS server answers at {where}: {text}") from None


def run_tail(
    nats_url: str,
    regency: str,
    *,
    replay_all: bool,
    subject: str | None,
    limit: int | None,
    last: int | None = None,
) -> int:
    """Blocking entry point for the command line; 1, with one line on stderr and no traceback,
    when NATS cannot be reached or goes away."""
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(
                tail(nats_url, regency, replay_all=replay_all, subject=subject, limit=limit, last=last)
            )
        except Unreachable as exc:
            print(f"pulih: {exc}; is the regency running? (set NATS_URL or PULIH_NATS_PORT)", file=sys.stderr)
            return 1
        except (NatsError, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            print(f"pulih: lost the NATS server at {without_password(nats_url)}: {reason}", file=sys.stderr)
            return 1
    return 0
