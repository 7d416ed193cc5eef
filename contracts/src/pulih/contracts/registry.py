"""Every event by its CloudEvent ``type``, upcasters for old versions, and message parsing.

Reading a message is: decode JSON, upcast old versions step by step (``v1 -> v2 -> v3``) to
the current shape, look up the model of the resulting ``type``, refuse identity keys, validate
tolerantly. Handlers only ever see current versions; no ``if version == 1`` anywhere else.

Tolerance lives here, in reading, and nowhere else. The models forbid unknown fields, so an
event Pulih *builds* with a misspelt field fails at once; :meth:`EventRegistry.parse` validates
with ``extra="ignore"``, so a message *read* with an attribute or data field this version does
not know (``dataschema``, a newer optional field) is applied without it. An unknown key that
names identity data is the exception (:mod:`pulih.contracts.identity_keys`): it is refused.
"""

import copy
import enum
import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from pulih.contracts.envelope import CloudEvent, envelope_type
from pulih.contracts.event import Event
from pulih.contracts.events import ALL_EVENTS
from pulih.contracts.identity_keys import find_identity_key

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the ``data`` of one event version into the ``data`` of the next."""

_TYPE_NAME = re.compile(r"^pulih\.[a-z]+\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$")
_TYPE_FIELD = re.compile(rb'"type"\s*:\s*"([^"\\]{1,200})"')
_MOST_ERRORS_SHOWN = 5


class InvalidEvent(ValueError):
    """A message that is not a valid event of the catalogue.

    ``reason`` is a short human message naming what is wrong, e.g. ``unknown type
    pulih.x.Y.v1`` or ``data.client_id: Input should be a valid UUID, ...``; it is what a
    consumer writes next to the message on the dead-letter subject.
    """

    code: ClassVar[str] = "invalid_event"

    def __init__(self, reason: str) -> None:
        """Make the error for ``reason``."""
        super().__init__(reason)
        self.reason = reason


class IdentityRefused(InvalidEvent):
    """An invalid event because it holds an identity key (``nik``, ``name``…): no copy of it may
    be kept, so a consumer also erases it from the stream after dead-lettering a redacted copy."""


class EventRegistry:
    """A set of event models by type name, with the upcasters that lead old types to them.

    The module's functions use :data:`DEFAULT_REGISTRY`, holding the catalogue. Tests that need
    extra models or upcasters work on :meth:`copy` of it.
    """

    def __init__(self, models: Iterable[type[Event]] = ()) -> None:
        """Make a registry holding ``models`` and no upcasters."""
        self._models: dict[str, type[Event]] = {}
        # An envelope (CloudEvent[Model]) is built when its type is first read or written, by
        # envelope_type, which holds it: a service uses a few of the catalogue's types, and an
        # envelope's validator costs time and memory.
        self._plain: set[str] = set()
        """The types :meth:`_parse_plain` may read: no key of theirs escapes the models."""
        self._upcasters: dict[str, tuple[str, Upcaster]] = {}
        for model in models:
            self.register(model)

    @property
    def types(self) -> Mapping[str, type[Event]]:
        """A read-only live view of the registered models by type name."""
        return MappingProxyType(self._models)

    def copy(self) -> "EventRegistry":
        """An independent registry with the same models and upcasters."""
        twin = EventRegistry(self._models.values())
        twin._upcasters = dict(self._upcasters)
        return twin

    def register(self, model: type[Event]) -> None:
        """Add ``model`` under its type name; ``ValueError`` if the name is taken or abstract."""
        if not model.is_concrete():
            raise ValueError(f"{model.__name__} is not a concrete event")
        type_name = model.type_name()
        if type_name in self._models:
            raise ValueError(f"{type_name} is already registered")
        self._models[type_name] = model
        if _keys_all_declared(model):
            self._plain.add(type_name)

    def unregister(self, model: type[Event]) -> None:
        """Remove ``model``; ``KeyError`` if it is not registered."""
        del self._models[model.type_name()]
        self._plain.discard(model.type_name())

    def register_upcaster(self, from_type: str, to_type: str, fn: Upcaster) -> None:
        """Upcast messages of ``from_type`` to ``to_type`` by turning their data with ``fn``.

        ``ValueError`` for a malformed type name, a second upcaster from the same type, or one
        that would close a loop.
        """
        for type_name in (from_type, to_type):
            if not _TYPE_NAME.match(type_name):
                raise ValueError(f"{type_name!r} is not a type name like pulih.rehab.Name.v1")
        if from_type in self._upcasters:
            raise ValueError(f"an upcaster from {from_type} is already registered")
        step: str | None = to_type
        while step is not None:
            if step == from_type:
                raise ValueError(f"upcasting {from_type} to {to_type} would loop")
            step = self._upcasters[step][0] if step in self._upcasters else None
        self._upcasters[from_type] = (to_type, fn)

    def unregister_upcaster(self, from_type: str) -> None:
        """Remove the upcaster from ``from_type``; ``KeyError`` if there is none."""
        del self._upcasters[from_type]

    def model_for(self, type_name: str) -> type[Event]:
        """The model of ``type_name``; :class:`InvalidEvent` if it is not registered."""
        try:
            return self._models[type_name]
        except KeyError:
            raise InvalidEvent(f"unknown type {type_name}") from None

    def upcast(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """``envelope`` with its data brought to the newest version its upcasters lead to.

        Each step replaces ``data`` and rewrites ``type``; the input is left untouched. An
        envelope of a current type comes back as an equal copy.
        """
        result = dict(envelope)
        while isinstance(result.get("type"), str) and result["type"] in self._upcasters:
            from_type = result["type"]
            to_type, fn = self._upcasters[from_type]
            data = result.get("data")
            if not isinstance(data, Mapping):
                raise InvalidEvent(f"data: an object is required to upcast {from_type}")
            try:
                new_data = fn(copy.deepcopy(dict(data)))
            except Exception as exc:
                raise InvalidEvent(f"upcasting {from_type} to {to_type} failed: {exc}") from exc
            result = {**result, "type": to_type, "data": new_data}
        return result

    def parse(self, raw: bytes | str | Mapping[str, Any]) -> CloudEvent[Event]:
        """Read one message: JSON text or an already decoded object.

        Attributes and data fields the model does not know are ignored, except identity keys
        (at any depth), which are refused. Raises :class:`InvalidEvent` with a short reason for
        anything but a valid event of a registered type (after upcasting).
        """
        if isinstance(raw, bytes | bytearray | str):
            read = self._parse_plain(raw.encode() if isinstance(raw, str) else raw)
            if read is not None:
                return read
        if isinstance(raw, bytes | bytearray | str):
            try:
                decoded = json.loads(raw)
            except ValueError as exc:
                raise InvalidEvent(f"invalid JSON: {exc}") from exc
        else:
            decoded = raw
        if not isinstance(decoded, Mapping):
            raise InvalidEvent("an event must be a JSON object")
        envelope = self.upcast(decoded)
        type_name = envelope.get("type")
        if type_name is None:
            raise InvalidEvent("type: Field required")
        if not isinstance(type_name, str):
            raise InvalidEvent("type: Input should be a valid string")
        model = self.model_for(type_name)
        envelope_model = envelope_type(model)
        identity = find_identity_key(envelope, envelope_model)
        if identity is not None:
            raise IdentityRefused(
                f"{identity}: identity keys are refused, no event carries a person's identity"
            )
        try:
            return envelope_model.model_validate(envelope, extra="ignore")
        except ValidationError as exc:
            raise InvalidEvent(_describe(exc)) from exc

    def _parse_plain(self, raw: bytes | bytearray) -> CloudEvent[Event] | None:
        """The event in ``raw`` when it plainly is a current event, read in one pass of
        pydantic's JSON parser (two to three times faster than :meth:`parse`'s general path);
        else None, and the general path decides (and says why it refuses).

        Plain means: a ``type`` with a model and no upcaster, and not one key the models do not
        declare, at any depth (the models forbid unknown keys; the general path ignores them).
        So the message holds no identity key the general path would refuse, and pydantic reads
        duplicate keys as ``json.loads`` does (the last wins): the result is the general path's.
        """
        found = _TYPE_FIELD.search(raw)
        if found is None:
            return None
        type_name = found.group(1).decode()
        if type_name not in self._plain or type_name in self._upcasters:
            return None
        try:
            return envelope_type(self._models[type_name]).model_validate_json(raw)
        except ValidationError:
            return None


def _keys_all_declared(annotation: Any) -> bool:
    """Whether every key a value of ``annotation`` can hold is declared by a model that forbids
    the others, or is an enumerated code (``dict[str, …]``, ``Any`` or a model that ignores
    unknown keys could let an identity key through)."""
    if annotation is Any:
        return False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.model_config.get("extra") == "forbid" and all(
            _keys_all_declared(field.annotation) for field in annotation.model_fields.values()
        )
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        key = arguments[0] if arguments else Any
        keys_coded = isinstance(key, type) and issubclass(key, enum.Enum)
        return keys_coded and all(_keys_all_declared(a) for a in arguments[1:])
    return all(_keys_all_declared(a) for a in arguments)


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False):
        where = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"]
        if detail["type"] == "value_error" and "error" in detail.get("ctx", {}):
            message = str(detail["ctx"]["error"])
        problems.append(f"{where}: {message}" if where else message)
    shown = "; ".join(problems[:_MOST_ERRORS_SHOWN])
    hidden = len(problems) - _MOST_ERRORS_SHOWN
    return f"{shown} (and {hidden} more)" if hidden > 0 else shown


DEFAULT_REGISTRY = EventRegistry(ALL_EVENTS)
"""The catalogue: every current event, and the upcasters of their older versions."""

EVENT_TYPES: Mapping[str, type[Event]] = DEFAULT_REGISTRY.types
"""Every current event model by its CloudEvent ``type``."""


def model_for(type_name: str) -> type[Event]:
    """The catalogue's model of ``type_name``; :class:`InvalidEvent` if there is none."""
    return DEFAULT_REGISTRY.model_for(type_name)


def register_upcaster(from_type: str, to_type: str, fn: Upcaster) -> None:
    """Teach the catalogue to read ``from_type`` messages as ``to_type`` (see
    :meth:`EventRegistry.register_upcaster`)."""
    DEFAULT_REGISTRY.register_upcaster(from_type, to_type, fn)


def upcast(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """``envelope`` upcast by the catalogue's upcasters (see :meth:`EventRegistry.upcast`)."""
    return DEFAULT_REGISTRY.upcast(envelope)


def parse_event(raw: bytes | str | Mapping[str, Any]) -> CloudEvent[Event]:
    """Read one message of the catalogue; :class:`InvalidEvent` with a reason otherwise."""
    return DEFAULT_REGISTRY.parse(raw)
