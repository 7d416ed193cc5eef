"""The regency's JetStream: the broker, the stream ``IBM_<regency>``, and stream-bound publishing.

One stream per regency holds every event of that regency (``ibm.<regency>.>``), on file storage,
with a duplicate window long enough for an outbox relay to restart and publish again.

The stream is the regency's history: projections are rebuilt from it and a consumer that was
down for a week reads what it missed. So its limits never delete an event. It has a size limit
with ``discard: new``: a full stream refuses new messages (the publisher gets an error) instead
of dropping old ones, and an outbox keeps every refused event and publishes it again once an
operator has made room. It has no age limit: an age limit deletes by the clock whether or not a
consumer has read the message. A per-message limit bounds what one junk message can cost: it is
refused before it is stored (clinics' NATS account holds them to far less still).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.security import NatsSecurity, NatsUserPassword
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, Header, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.settings import DEFAULT_STREAM_MAX_BYTES, DEFAULT_STREAM_MAX_MSG_SIZE, Settings

log = logging.getLogger("pulih.messaging")

DUPLICATE_WINDOW = timedelta(minutes=10)
"""How long JetStream remembers a ``Nats-Msg-Id``: the longest relay outage that stays exact."""


@dataclass(frozen=True)
class StreamLimits:
    """How much the regency stream may hold, and its largest message, in bytes."""

    max_bytes: int = DEFAULT_STREAM_MAX_BYTES
    max_msg_size: int = DEFAULT_STREAM_MAX_MSG_SIZE
    replicas: int | None = None
    """Copies on a JetStream cluster; None: 1 for a new stream, an existing one's are kept."""

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamLimits:
        """``PULIH_STREAM_MAX_BYTES``, ``PULIH_STREAM_MAX_MSG_SIZE`` and ``PULIH_STREAM_REPLICAS``."""
        return cls(
            max_bytes=int(settings.stream_max_bytes),
            max_msg_size=int(settings.stream_max_msg_size),
            replicas=settings.stream_replicas,
        )


def nats_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the regency's NATS server (deploy/tls), or None for the defaults.

    ``PULIH_NATS_CA_FILE`` names the CA to trust (the regency's own, not the system's);
    ``PULIH_NATS_CERT_FILE`` and ``PULIH_NATS_KEY_FILE`` a client certificate for a server that
    verifies its clients. Without them a server that requires TLS is still spoken to over TLS,
    trusting the system's CAs.
    """
    if settings.nats_ca_file is None and settings.nats_cert_file is None:
        return None
    context = ssl.create_default_context(cafile=str(settings.nats_ca_file) if settings.nats_ca_file else None)
    if settings.nats_cert_file is not None and settings.nats_key_file is not None:
        context.load_cert_chain(str(settings.nats_cert_file), str(settings.nats_key_file))
    return context


def without_password(url: str) -> str:
    """``url`` (one NATS URL or several, comma-separated) with each password replaced by ``***``,
    for the logs."""
    return re.sub(r"(://[^:/@,]+:)[^@,]*@", r"\1***@", url)


def nats_servers(nats_url: str) -> list[str]:
    """The servers of ``NATS_URL``: one URL, or several separated by commas (a cluster's nodes,
    e.g. ``nats://national:pw@hub-1:4222,nats://national:pw@hub-2:4222``), each tried in turn
    at connect and at reconnect. nats-py takes a list; one string with commas it refuses
    ("invalid connect url option")."""
    servers = [url.strip() for url in nats_url.split(",") if url.strip()]
    if not servers:
        raise ValueError("NATS_URL names no server")
    return servers


def nats_login(nats_url: str) -> tuple[str, str] | None:
    """The user and password the first server of ``NATS_URL`` names, if any.

    Connected to one node of a cluster, the client learns the other nodes from the server
    (``connect_urls``) and may reconnect to one of them later; those addresses carry no
    password, so without the login given apart from the URL that reconnection is refused
    ("Authorization Violation") and the client gives up."""
    for url in nats_servers(nats_url):
        parts = urlsplit(url)
        if parts.username:
            return unquote(parts.username), unquote(parts.password or "")
    return None


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def _security(nats_url: str, tls: ssl.SSLContext | None) -> NatsSecurity | None:
    login = nats_login(nats_url)
    if login is not None:
        return NatsUserPassword(login[0], login[1], ssl_context=tls)
    return NatsSecurity(ssl_context=tls) if tls is not None else None


def make_broker(nats_url: str, *, name: str, tls: ssl.SSLContext | None = None) -> NatsBroker:
    """A FastStream NATS broker with OpenTelemetry propagation through message headers.

    ``nats_url`` may list several servers, comma-separated (:func:`nats_servers`). ``tls`` (see
    :func:`nats_tls`) is used when the server requires TLS, as deploy/ does.
    """
    servers = nats_servers(nats_url)
    if nats_login(nats_url) is not None:  # given once as the login, for every node (FastStream
        servers = [_without_login(url) for url in servers]  # refuses it in a URL as well)
    return NatsBroker(
        servers,
        name=name,
        middlewares=[NatsTelemetryMiddleware()],
        # FastStream's own lines go through the process's logging (pulih.kit.logs), and its line
        # per message ("Received", "Processed") is DEBUG: at INFO it was nearly all of a run's log
        logger=logging.getLogger("faststream.access.nats"),
        log_level=logging.DEBUG,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
        graceful_timeout=10,
        security=_security(nats_url, tls),
    )


def regency_stream_config(regency: str, limits: StreamLimits | None = None) -> StreamConfig:
    """The configuration of stream ``IBM_<regency>`` (see the module's docstring for its limits)."""
    limits = limits or StreamLimits()
    return StreamConfig(
        name=stream_name(regency),
        subjects=[regency_subjects(regency)],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        description=f"Every event of regency {regency}",
        max_bytes=limits.max_bytes,
        max_msg_size=limits.max_msg_size,
        discard=DiscardPolicy.NEW,
        max_age=0.0,
        max_msgs=-1,
        max_msgs_per_subject=-1,
        num_replicas=limits.replicas or 1,
    )


_MANAGED = (
    "subjects",
    "storage",
    "retention",
    "duplicate_window",
    "description",
    "max_bytes",
    "max_msg_size",
    "discard",
    "max_age",
    "max_msgs",
    "max_msgs_per_subject",
)
"""The fields Pulih sets; an operator's other settings (compression…) are kept, and the replicas
too unless ``PULIH_STREAM_REPLICAS`` is set."""

FULL_WARNING = 0.9
"""From this share of ``max_bytes`` on, every service start says the stream is filling up."""


async def ensure_regency_stream(broker: NatsBroker, regency: str, limits: StreamLimits | None = None) -> None:
    """Create the regency's stream, or bring the fields Pulih sets up to date.

    Idempotent: an existing stream whose fields already match is not touched. Lowering
    ``max_bytes`` below what the stream holds deletes nothing (``discard: new``); the stream then
    refuses new events until the limit is raised again. A stream 90% full is logged as an error.
    """
    js = broker.connection.jetstream()
    config = regency_stream_config(regency, limits)
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
        return
    managed = _MANAGED if limits is None or limits.replicas is None else (*_MANAGED, "num_replicas")
    wanted = {field: getattr(config, field) for field in managed}
    if not all(_same(getattr(info.config, field), value) for field, value in wanted.items()):
        await js.update_stream(dataclasses.replace(info.config, **wanted))
        log.info("updated stream %s: %s", config.name, ", ".join(f"{k}={v}" for k, v in wanted.items()))
    limit, stored = config.max_bytes or 0, info.state.bytes
    if stored >= FULL_WARNING * limit:
        log.error(
            "stream %s holds %d of its %d bytes: when full it refuses new events (they wait in the "
            "outboxes, see /readyz) until PULIH_STREAM_MAX_BYTES is raised",
            config.name,
            stored,
            limit,
        )


def _same(current: object, wanted: object) -> bool:
    # The server reports durations as float seconds where Pulih may have written an int.
    if isinstance(current, int | float) and isinstance(wanted, int | float):
        return float(current) == float(wanted)
    return current == wanted


class StreamPublisher:
    """Publishes on the regency's stream with the NATS client itself, not through FastStream.

    FastStream's telemetry middleware would put a span of its own in the ``traceparent`` header,
    so the headers would contradict the envelope (EVENTS.md). The relay sends the row's headers
    (:func:`pulih.kit.outbox.envelope_headers`) and opens the publish span itself. Calling it
    publishes one message and returns after the PubAck (:data:`pulih.kit.outbox.Publish`);
    :meth:`send` puts one on the wire and returns a future of its PubAck, so the relay keeps
    hundreds in flight without a task each (:class:`pulih.kit.outbox.PipelinedPublish`).

    :meth:`send` is nats-py's ``publish_async`` done again, because that one leaves the future
    of a message the stream refuses pending for ever (nats-py 2.16 raises the refusal inside
    its reply handler instead of setting it on the future): each message gets a reply subject
    under one inbox of this publisher's, and the PubAck, or the refusal, settles its future.
    """

    def __init__(self, broker: NatsBroker, regency: str, *, timeout: float = 5.0) -> None:
        self.broker = broker
        self.stream = stream_name(regency)
        self.timeout = timeout
        """How long a message may wait for its PubAck."""
        self._context: tuple[object, JetStreamContext] | None = None
        self._inbox: tuple[object, str] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, object]]] = {}
        self._sent = 0

    def _jetstream(self) -> JetStreamContext:
        connection = self.broker.connection  # one context per connection, not per message
        if self._context is None or self._context[0] is not connection:
            self._context = (connection, connection.jetstream())
        return self._context[1]

    async def __call__(self, payload: bytes, subject: str, headers: dict[str, str]) -> None:
        """Publish and return once the stream acknowledged (or raise)."""
        await self._jetstream().publish(
            subject,
            payload,
            timeout=self.timeout,
            stream=self.stream,
            headers={**headers, "content-type": "application/cloudevents+json"},
        )

    async def send(
        self, payload: bytes, subject: str, headers: dict[str, str]
    ) -> asyncio.Future[dict[str, object]]:
        """Put the message on the wire; the future resolves with its PubAck (as a dict) or fails
        with the stream's refusal. It has no deadline of its own: the caller gives up after
        ``timeout`` by cancelling it."""
        connection = self.broker.connection
        if self._inbox is None or self._inbox[0] is not connection:
            inbox = connection.new_inbox()
            await connection.subscribe(f"{inbox}.*", cb=self._answer)
            self._inbox = (connection, inbox)
        self._sent += 1
        reply = f"{self._inbox[1]}.{self._sent}"
        answer: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiting[reply] = answer
        answer.add_done_callback(lambda _: self._waiting.pop(reply, None))
        try:
            await connection.publish(
                subject,
                payload,
                reply=reply,
                headers={
                    **headers,
                    "content-type": "application/cloudevents+json",
                    Header.EXPECTED_STREAM: self.stream,
                },
            )
        except BaseException:
            answer.cancel()
            raise
        return answer

    async def _answer(self, msg: Msg) -> None:
        answer = self._waiting.get(msg.subject)
        if answer is None or answer.done():
            return
        if msg.headers and msg.headers.get(Header.STATUS) == "503":
            answer.set_exception(NoStreamResponseError())
            return
        try:
            response = json.loads(msg.data)
        except ValueError as exc:
            answer.set_exception(exc)
            return
        if isinstance(response, dict) and "error" in response:
            try:
                APIError.from_error(response["error"])  # raises the error's class
            except APIError as refusal:
                answer.set_exception(refusal)
            return
        answer.set_result(response)


def stream_publisher(broker: NatsBroker, regency: str, *, timeout: float = 5.0) -> StreamPublisher:
    """The publish function of the outbox relay: through the regency's stream, returning after
    the PubAck (see :class:`StreamPublisher`)."""
    return StreamPublisher(broker, regency, timeout=timeout)
