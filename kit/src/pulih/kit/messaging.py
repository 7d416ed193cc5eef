"""The regency's JetStream: the broker, the stream ``IBM_<regency>``, and stream-bound publishing.

One stream per regency holds every event of that regency (``ibm.<regency>.>``), on file storage,
with a duplicate window long enough for an outbox relay to restart and publish again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.outbox import Publish

log = logging.getLogger("pulih.messaging")

DUPLICATE_WINDOW = timedelta(minutes=10)
"""How long JetStream remembers a ``Nats-Msg-Id``: the longest relay outage that stays exact."""


def make_broker(nats_url: str, *, name: str) -> NatsBroker:
    """A FastStream NATS broker with OpenTelemetry propagation through message headers."""
    return NatsBroker(
        nats_url,
        name=name,
        middlewares=[NatsTelemetryMiddleware()],
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
        graceful_timeout=10,
    )


def regency_stream_config(regency: str) -> StreamConfig:
    """The configuration of stream ``IBM_<regency>``."""
    return StreamConfig(
        name=stream_name(regency),
        subjects=[regency_subjects(regency)],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        description=f"Every event of regency {regency}",
    )


async def ensure_regency_stream(broker: NatsBroker, regency: str) -> None:
    """Create the regency's stream, or bring its configuration up to date."""
    js = broker.connection.jetstream()
    config = regency_stream_config(regency)
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
    else:
        await js.update_stream(config)


def stream_publisher(broker: NatsBroker, regency: str, *, timeout: float = 5.0) -> Publish:
    """A publish function for the outbox relay: through the stream, returning after the PubAck."""
    stream = stream_name(regency)

    async def publish(payload: bytes, subject: str, headers: dict[str, str]) -> None:
        await broker.publish(
            payload,
            subject,
            headers={**headers, "content-type": "application/cloudevents+json"},
            stream=stream,
            timeout=timeout,
        )

    return publish
