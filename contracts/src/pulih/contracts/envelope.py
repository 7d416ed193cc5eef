"""The CloudEvents 1.0 envelope (structured JSON) that carries every event."""

import functools
from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, Self, TypeVar, cast
from uuid import UUID

import uuid6
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
    model_validator,
)

from pulih.contracts.codes import RegencyCode
from pulih.contracts.event import Event

E = TypeVar("E", bound=Event, covariant=True)
EventT = TypeVar("EventT", bound=Event)

_EXTENSIONS = ("correlationid", "causationid", "traceparent")


class CloudEvent(BaseModel, Generic[E]):
    """A CloudEvents 1.0 envelope around one event's data, as sent on NATS.

    ``type``, ``source`` and ``subject`` must agree with the data: a
    ``CloudEvent[ClientScreened]`` has type ``pulih.outreach.ClientScreened.v1``, source
    ``/pulih/<regency>/outreach`` and the client's id as subject. Build one with
    :func:`new_event`; read one with :func:`pulih.contracts.registry.parse_event`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    """Unique id of this event (UUIDv7 preferred); also the ``Nats-Msg-Id`` header."""
    source: Annotated[str, StringConstraints(pattern=r"^/pulih/[0-9]{4}/[a-z]+$")]
    """``/pulih/<regency>/<service>``: the service that published the event."""
    type: str
    """``pulih.<service>.<EventName>.v<N>``."""
    subject: Annotated[str, StringConstraints(min_length=1)]
    """The id of what the event is about (client, unit, agent, referral, or the regency)."""
    time: AwareDatetime
    """When the event happened, RFC 3339 in UTC."""
    datacontenttype: Literal["application/json"] = "application/json"
    regency: RegencyCode
    """Kemendagri code of the regency the event belongs to."""
    correlationid: str | None = None
    """The request or conversation that led to this event."""
    causationid: str | None = None
    """The request or event that directly caused this event."""
    traceparent: str | None = None
    """W3C trace context of the trace this event belongs to."""
    data: E

    @field_validator("time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _agrees_with_data(self) -> Self:
        model = type(self.data)
        expected = _envelope_of(model)
        if expected is None:
            return self
        type_name, service_name, about = expected
        if self.type != type_name:
            raise ValueError(f"type {self.type} does not match data of {type_name}")
        source = f"/pulih/{self.regency}/{service_name}"
        if self.source != source:
            raise ValueError(f"source {self.source} should be {source}")
        if self.subject != str(getattr(self.data, about)):
            raise ValueError(f"subject {self.subject} should be {about} of the data")
        return self

    def to_json(self) -> bytes:
        """The message body: compact JSON, extension attributes left out when unset."""
        unset = {name for name in _EXTENSIONS if getattr(self, name) is None}
        return self.model_dump_json(by_alias=True, exclude=unset).encode()


@functools.cache
def _envelope_of(model: type[Event]) -> tuple[str, str, str] | None:
    """What the envelope of a ``model`` event must say (type, service, the subject's field), or
    None for a model that is no concrete event; once per class, as every message is read."""
    if not model.is_concrete():
        return None
    return model.type_name(), model.service_name, model.about


@functools.cache
def envelope_type(model: type[EventT]) -> type[CloudEvent[EventT]]:
    """The envelope class whose ``data`` is a ``model``, e.g. ``CloudEvent[ClientScreened]``:
    built the first time it is asked for, then held (pydantic's cache of parametrised generics
    holds them weakly, and building one again, some 9 ms, costs more than reading an event)."""
    return cast("type[CloudEvent[EventT]]", CloudEvent[model])  # type: ignore[valid-type]


def new_event_id() -> UUID:
    """A fresh event id: a UUIDv7, so ids sort by creation time."""
    return UUID(bytes=uuid6.uuid7().bytes)


def new_event(
    data: EventT,
    *,
    regency: str,
    correlationid: str | None = None,
    causationid: str | None = None,
    traceparent: str | None = None,
    id: UUID | None = None,
    time: datetime | None = None,
) -> CloudEvent[EventT]:
    """Wrap ``data`` in its envelope, published now by its service in ``regency``.

    ``type``, ``source`` and ``subject`` come from the data's class; ``id`` defaults to a new
    UUIDv7 and ``time`` to now (UTC). Raises ``pydantic.ValidationError`` (a ``ValueError``)
    for a malformed regency and ``TypeError`` for data that is not a concrete event.
    """
    model = type(data)
    if not model.is_concrete():
        raise TypeError(f"{model.__name__} is not a concrete event")
    return envelope_type(model)(
        id=id or new_event_id(),
        source=f"/pulih/{regency}/{model.service_name}",
        type=model.type_name(),
        subject=data.subject_id(),
        time=time or datetime.now(UTC),
        regency=regency,
        correlationid=correlationid,
        causationid=causationid,
        traceparent=traceparent,
        data=data,
    )
