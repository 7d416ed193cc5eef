"""JSON Schema (draft 2020-12) of every event's whole message, for clinics in any language.

One file per event, ``<EventName>.v<N>.json``: the CloudEvents envelope whose ``type`` is that
event's and whose ``data`` is that event's model, so a raw NATS message validates against the
one file alone. The files are generated; ``contracts/schemas`` holds the checked-in copy::

    python -m pulih.contracts.schemas --write contracts/schemas   # regenerate
    python -m pulih.contracts.schemas --check contracts/schemas   # exit 1 on drift
"""

import argparse
import inspect
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pulih.contracts.envelope import CloudEvent, envelope_type
from pulih.contracts.event import Event
from pulih.contracts.registry import EVENT_TYPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://pulih.id/schemas/"
WRITE_COMMAND = "python -m pulih.contracts.schemas --write contracts/schemas"
"""The command that regenerates the checked-in schemas (run from the project root)."""

_SCHEMA_FILE = re.compile(r"^[A-Z][A-Za-z0-9]*\.v[0-9]+\.json$")
_ALWAYS_SENT = ("specversion", "datacontenttype")


def schema_file_name(model: type[Event]) -> str:
    """The file holding ``model``'s schema, e.g. ``ClientScreened.v1.json``."""
    return f"{model.event_name()}.v{model.version}.json"


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
    schema.update(
        {
            "$schema": DIALECT,
            "$id": f"{ID_BASE}{schema_file_name(model)}",
            "title": model.event_name(),
            "description": inspect.cleandoc(model.__doc__ or model.event_name()),
        }
    )
    return schema


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
    directory.mkdir(parents=True, exist_ok=True)
    expected = render_schemas()
    for stale in directory.glob("*.json"):
        if _SCHEMA_FILE.match(stale.name) and stale.name not in expected:
            stale.unlink()
    written = []
    for name, text in sorted(expected.items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """What differs between ``directory`` and the current schemas, one line each; [] if none."""
    expected = render_schemas()
    present = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    problems = [f"missing: {name}" for name in sorted(expected.keys() - present)]
    problems += [f"extra: {name}" for name in sorted(present - expected.keys())]
    problems += [
        f"drifted: {name}"
        for name in sorted(expected.keys() & present)
        if (directory / name).read_text(encoding="utf-8") != expected[name]
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write DIR`` regenerates, ``--check DIR`` exits 1 on any drift."""
    parser = argparse.ArgumentParser(
        prog="python -m pulih.contracts.schemas", description="JSON Schemas of the Pulih events"
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", type=Path, help="write the schemas to DIR")
    action.add_argument("--check", metavar="DIR", type=Path, help="compare DIR with the schemas")
    args = parser.parse_args(argv)
    if args.write is not None:
        written = write_schemas(args.write)
        print(f"wrote {len(written)} schemas to {args.write}")
        return 0
    problems = check_schemas(args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"schemas in {args.check} are out of date: run {WRITE_COMMAND}", file=sys.stderr)
        return 1
    print(f"{args.check}: {len(render_schemas())} schemas up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
