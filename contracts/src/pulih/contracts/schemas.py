"""JSON Schema (draft 2020-12) of every event's whole message, for clinics in any language.

One file per event, ``<EventName>.v<N>.json``: the CloudEvents envelope whose ``type`` is that
event's and whose ``data`` is that event's model, so a raw NATS message validates against the
one file alone. Every service's dead letter is called ``EventDeadLettered``, so their files are
``<service>.EventDeadLettered.v1.json``.

The schemas read like Pulih's own consumers (EVENTS.md, "Compatibility: tolerant readers"): an
object may hold properties the schema does not name, so a clinic validating with them keeps
working when Pulih adds an optional field; but no object, at any depth, may hold an identity key
(:data:`~pulih.contracts.identity_keys.IDENTITY_KEYS`) that its own schema does not declare.

The files are generated; ``contracts/schemas`` holds the checked-in copy::

    python -m pulih.contracts.schemas --write contracts/schemas   # regenerate
    python -m pulih.contracts.schemas --check contracts/schemas   # exit 1 on drift
"""

import inspect
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pulih.contracts.checked_in import command_line, drift, write_files
from pulih.contracts.envelope import CloudEvent, envelope_type
from pulih.contracts.event import Event
from pulih.contracts.events.dead_letters import EventDeadLettered
from pulih.contracts.identity_keys import IDENTITY_KEYS
from pulih.contracts.registry import EVENT_TYPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://pulih.id/schemas/"
WRITE_COMMAND = "python -m pulih.contracts.schemas --write contracts/schemas"
"""The command that regenerates the checked-in schemas (run from the project root)."""

_SCHEMA_FILE = re.compile(r"^([a-z]+\.)?[A-Z][A-Za-z0-9]*\.v[0-9]+\.json$")
_ALWAYS_SENT = ("specversion", "datacontenttype")
NO_IDENTITY_KEYS = "NoIdentityKeys"
"""The ``$defs`` entry every undeclared property must match: any JSON without identity keys."""


def schema_file_name(model: type[Event]) -> str:
    """The file holding ``model``'s schema, e.g. ``ClientScreened.v1.json``, or
    ``rehab.EventDeadLettered.v1.json`` for a dead letter (a name every consuming service uses)."""
    name = f"{model.event_name()}.v{model.version}.json"
    if issubclass(model, EventDeadLettered):
        return f"{model.service_name}.{name}"
    return name


def event_schema(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema of a whole message carrying a ``model`` event."""
    schema = envelope_type(model).model_json_schema(mode="validation")
    properties = schema["properties"]
    properties["type"] = {
        **properties["type"],
        "const": model.type_name(),
    }
    properties["source"] = {
        **properties["source"],
        "pattern": f"^/pulih/[0-9]{{4}}/{model.service_name}$",
    }
    about = schema["$defs"][model.__name__]["properties"][model.about]
    properties["subject"] = {
        **properties["subject"],
        **{key: about[key] for key in ("format", "pattern") if key in about},
    }
    required = set(schema.get("required", ())) | set(_ALWAYS_SENT)
    schema["required"] = [name for name in CloudEvent.model_fields if name in required]
    _read_tolerantly(schema)
    schema.update(
        {
            "$schema": DIALECT,
            "$id": f"{ID_BASE}{schema_file_name(model)}",
            "title": model.event_name(),
            "description": inspect.cleandoc(model.__doc__ or model.event_name()),
        }
    )
    return schema


def _read_tolerantly(schema: dict[str, Any]) -> None:
    """Let every object of ``schema`` (the envelope and each model in ``$defs``) hold properties
    it does not name, except identity keys, refused in it and at any depth inside them."""
    definitions = schema.setdefault("$defs", {})
    for model_schema in [schema, *definitions.values()]:
        if model_schema.get("type") != "object" or "properties" not in model_schema:
            continue
        declared = model_schema["properties"]
        model_schema["additionalProperties"] = {"$ref": f"#/$defs/{NO_IDENTITY_KEYS}"}
        model_schema["propertyNames"] = {"not": {"enum": [k for k in IDENTITY_KEYS if k not in declared]}}
    definitions[NO_IDENTITY_KEYS] = {
        "description": (
            "Any JSON value in which no object, at any depth, has an identity key: what a "
            "property this schema does not name may hold (readers ignore it)."
        ),
        "propertyNames": {"not": {"enum": list(IDENTITY_KEYS)}},
        "additionalProperties": {"$ref": f"#/$defs/{NO_IDENTITY_KEYS}"},
        "items": {"$ref": f"#/$defs/{NO_IDENTITY_KEYS}"},
    }


def render_schema(model: type[Event]) -> str:
    """``model``'s schema as file text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(event_schema(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas(models: Iterable[type[Event]] | None = None) -> dict[str, str]:
    """File name to file text for ``models`` (default: every event of the catalogue)."""
    chosen = EVENT_TYPES.values() if models is None else models
    return {schema_file_name(model): render_schema(model) for model in chosen}


def write_schemas(directory: Path) -> list[Path]:
    """Make ``directory`` hold exactly the current schemas; returns the files written.

    Stale schema files (named like ``Name.v1.json``) are removed; nothing else is touched.
    """
    return write_files(directory, render_schemas(), _is_schema_file)


def check_schemas(directory: Path) -> list[str]:
    """What differs between ``directory`` and the current schemas, one line each; [] if none."""
    return drift(directory, render_schemas())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write DIR`` regenerates, ``--check DIR`` exits 1 on any drift."""
    return command_line(
        argv,
        prog="python -m pulih.contracts.schemas",
        description="JSON Schemas of the Pulih events",
        what="schemas",
        write_command=WRITE_COMMAND,
        render=render_schemas,
        owns=_is_schema_file,
    )


def _is_schema_file(name: str) -> bool:
    return _SCHEMA_FILE.match(name) is not None


if __name__ == "__main__":
    raise SystemExit(main())
