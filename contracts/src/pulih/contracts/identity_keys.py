"""The names under which a person's identity would travel, refused in every message.

Readers are tolerant (EVENTS.md, "Compatibility"): a field or attribute a reader does not know
is ignored, so Pulih can add optional fields freely. Privacy is the exception. A message that
holds one of :data:`IDENTITY_KEYS` anywhere a model does not declare it (an unknown attribute,
an unknown data field, or anywhere inside one) is refused, so a careless or hostile sender
cannot make an identity ride along unnoticed. The published JSON Schemas forbid the same names.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

IDENTITY_KEYS: tuple[str, ...] = (
    "name",
    "full_name",
    "nama",
    "nik",
    "phone",
    "telepon",
    "address",
    "alamat",
    "birth_date",
    "tanggal_lahir",
)
"""Keys no message may carry (unless its model declares one, as ``UnitEstablished.name``)."""

REDACTED = "[redacted]"
"""What replaces an identity key's value in a copy of a refused message."""

_IDENTITY = frozenset(IDENTITY_KEYS)


def is_identity_key(key: str) -> bool:
    """Whether ``key`` names identity data: compared without case, ``-`` read as ``_``."""
    return key.strip().lower().replace("-", "_") in _IDENTITY


def find_identity_key(message: Any, model: type[BaseModel] | None) -> str | None:
    """The path (``data.contact.nik``) of the first identity key in ``message``, or None.

    ``message`` is decoded JSON read as a ``model``; a key the model (or a model nested in one
    of its fields) declares is allowed, every other identity key is found, at any depth.
    """
    return next(_identity_paths(message, model, ()), None)


def redact_identity(value: Any) -> tuple[Any, bool]:
    """``value`` (decoded JSON) with every identity key's value replaced by :data:`REDACTED`,
    and whether anything was replaced. Declared fields are redacted too: this is for copies."""
    if isinstance(value, Mapping):
        found = False
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_identity_key(key):
                result[key], found = REDACTED, True
            else:
                result[key], inner = redact_identity(item)
                found = found or inner
        return result, found
    if isinstance(value, list):
        items = [redact_identity(item) for item in value]
        return [item for item, _ in items], any(found for _, found in items)
    return value, False


def _identity_paths(value: Any, model: type[BaseModel] | None, path: tuple[str, ...]) -> Iterator[str]:
    # Every consumed message passes here (a consumer reads thousands of events a second): the
    # answer for a key of a model is cached, and scalars are neither tested as mappings (an ABC
    # check) nor descended into.
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = key if type(key) is str else str(key)
            refused, nested = _key_rule(model, key_text)
            if refused:
                yield ".".join((*path, key_text))
            if type(item) not in _SCALARS and isinstance(item, Mapping | list):
                yield from _identity_paths(item, nested, (*path, key_text))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if type(item) not in _SCALARS and isinstance(item, Mapping | list):
                yield from _identity_paths(item, model, (*path, str(index)))


_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.lru_cache(maxsize=4096)
def _key_rule(model: type[BaseModel] | None, key: str) -> tuple[bool, type[BaseModel] | None]:
    """Whether ``key`` is refused under ``model`` (an identity key it does not declare), and the
    model its value is read as (if any)."""
    field = model.model_fields.get(key) if model is not None else None
    if field is None:
        return is_identity_key(key), None
    return False, _model_in(field.annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or inside ``list[...]`` / ``... | None``; else None.

    Fields holding mappings (``dict[Indicator, int]``) give None: their keys are codes, and an
    identity key among them is refused like any other."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.Union, types.UnionType, typing.Annotated):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
