"""``pulih events tail``: print the regency's events as they arrive, one line each."""

from __future__ import annotations

import asyncio
import contextlib
import json

import nats
from nats.js.api import DeliverPolicy

from pulih.contracts import regency_subjects, stream_name


def one_line(subject: str, payload: bytes) -> str:
    """A short line for one event: time, type, what it is about, and its data."""
    try:
        event = json.loads(payload)
        data = json.dumps(event.get("data"), separators=(",", ":"), ensure_ascii=False)
        return (
            f"{event.get('time', '?')}  {event.get('type', '?')}  subject={event.get('subject', '?')}  {data}"
        )
    except (ValueError, AttributeError):
        return f"{subject}  {payload[:200]!r}"


async def tail(
    nats_url: str, regency: str, *, replay_all: bool, subject: str | None, limit: int | None
) -> None:
    """Follow the stream (from now, or from the start with ``replay_all``) until interrupted."""
    nc = await nats.connect(nats_url, connect_timeout=3)
    try:
        js = nc.jetstream()
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


def run_tail(
    nats_url: str, regency: str, *, replay_all: bool, subject: str | None, limit: int | None
) -> None:
    """Blocking entry point for the command line."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(nats_url, regency, replay_all=replay_all, subject=subject, limit=limit))
