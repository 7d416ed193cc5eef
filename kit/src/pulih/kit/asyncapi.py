"""AsyncAPI 3.0 documents of the services' events: what each one sends and receives over NATS.

One document per service (and one for the national view, reporting's other face), generated from
the code: the events a service sends are the catalogue's events of that service
(``Event.service_name``) and its dead letter; what it receives is what its ``ServiceSpec.subscribe``
declares, run against a runtime that connects to nothing (each durable consumer's subject,
stream and the events it applies). Subjects come from :mod:`pulih.contracts.subjects` with the
regency (and a clinic) as channel parameters, and every payload is the same JSON Schema as
``contracts/schemas`` (:func:`pulih.contracts.schemas.event_schema`: the CloudEvents envelope
with the event's ``data``), its ``$defs`` moved to ``components/schemas``.

FastStream generates AsyncAPI from a broker's FastStream subscribers and publishers; Pulih's
consumers and relay speak to JetStream with nats-py itself (the batch consumer, the stream
publisher), so FastStream sees none of them and the kit describes them here (the tests validate
each document against the AsyncAPI 3.0.0 JSON Schema). ``contracts/asyncapi`` holds the
checked-in copy::

    python -m pulih.kit.asyncapi --write contracts/asyncapi   # regenerate
    python -m pulih.kit.asyncapi --check contracts/asyncapi   # exit 1 on drift
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pulih.contracts import Event, dlq_subject, stream_name
from pulih.contracts.checked_in import command_line, drift, write_files
from pulih.contracts.events.dead_letters import EventDeadLettered, dead_letter_model
from pulih.contracts.registry import EVENT_TYPES
from pulih.contracts.schemas import event_schema, schema_file_name
from pulih.contracts.subjects import event_subject_pattern
from pulih.kit.settings import DEFAULT_NATS_PORT

WRITE_COMMAND = "python -m pulih.kit.asyncapi --write contracts/asyncapi"
"""The command that regenerates the checked-in documents (run from the project root)."""

CLOUDEVENTS_JSON = "application/cloudevents+json"
REGENCY = "0000"
"""The regency the documents are generated for; its subjects' token becomes ``{regency}``."""
CLINIC = "clinic-id"
"""The clinic a referral or clinic subject is generated for; it becomes ``{clinic_id}``."""

NATIONAL = "reporting-national"
"""The national view's document: reporting with ``PULIH_REPORTING_MODE=national``, on the hub."""
EXTRA_SPECS = {NATIONAL: "pulih.reporting.national.spec:spec"}
"""Specs that are no entry point of their own (``pulih.services``), by document name."""

_PARAMETERS = {
    "regency": {"description": "the regency's 4-digit Kemendagri code, e.g. `3301`"},
    "clinic_id": {"description": "the clinic's id, a slug of `[a-z0-9-]` (at most 64)"},
}

EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "NATS headers: they repeat the envelope and never contradict it",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "format": "uuid",
            "description": "the event's `id`: JetStream keeps one copy within its duplicate window",
        },
        "Pulih-Type": {"type": "string", "description": "the event's `type`, for tools that read no bodies"},
        "content-type": {"type": "string", "const": CLOUDEVENTS_JSON},
        "traceparent": {"type": "string", "description": "the envelope's W3C `traceparent`, if any"},
        "correlation_id": {"type": "string", "description": "the envelope's `correlationid`"},
    },
    "required": ["Nats-Msg-Id", "Pulih-Type"],
}
"""What :func:`pulih.kit.outbox.envelope_headers` sends with every event."""

DEAD_LETTER_HEADERS: dict[str, Any] = {
    **EVENT_HEADERS,
    "properties": {
        **EVENT_HEADERS["properties"],
        "Pulih-Dlq-Error": {"type": "string", "description": "the letter's `error` code"},
        "Pulih-Dlq-Reason": {"type": "string", "description": "its `reason`, on one line"},
    },
}
"""A dead letter's headers (:func:`pulih.kit.consumers.dead_letter`): its envelope's and why."""


@dataclass(frozen=True)
class Consumer:
    """One durable consumer as a service declares it."""

    durable: str
    subject: str
    stream: str
    applies: frozenset[str] | None
    """The event types it applies (the others it acknowledges and skips); None: every one."""
    dead_letters: str
    """The subject of what it cannot apply."""


def specs() -> dict[str, str]:
    """Document name to ``module:attribute`` of its ``ServiceSpec``: every installed service's
    (entry points ``pulih.services``) and :data:`EXTRA_SPECS`."""
    found = {ep.name: ep.value for ep in entry_points(group="pulih.services")}
    return dict(sorted({**found, **EXTRA_SPECS}.items()))


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(import_module(module), attribute)


async def consumers_of(spec: Any, *, national: bool = False) -> list[Consumer]:
    """The durable consumers ``spec`` registers, from its own ``subscribe``, on a runtime that
    connects to nothing (its store a file in a temporary directory, never opened)."""
    from pulih.kit.clock import clock_from
    from pulih.kit.database import Database
    from pulih.kit.emitter import Emitter
    from pulih.kit.messaging import make_broker
    from pulih.kit.runtime import ServiceRuntime
    from pulih.kit.settings import Settings

    if spec.subscribe is None:
        return []
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            PULIH_ENV="development",
            PULIH_REGENCY=REGENCY,
            PULIH_DATA_DIR=Path(directory),
            NATS_URL="nats://127.0.0.1:1",
            DATABASE_URL=None,
            PULIH_PROGRAMME_FILE=None,
            PULIH_FEDERATION_FILE=None,
            PULIH_REPORTING_MODE="national" if national else "regency",
            PULIH_CLOCK="system",
        )
        deps = spec.dependencies(settings)
        database = Database(settings.database_url_for(spec.name))
        try:
            runtime = ServiceRuntime(
                spec.name,
                settings,
                database,
                Emitter(settings.regency),
                deps=deps,
                clock=clock_from(settings.clock, settings.timezone, settings.clock_start),
            )
            spec.subscribe(runtime, make_broker(settings.nats_url, name="pulih-asyncapi"))
            return [_consumer(spec.name, batch) for batch in runtime.batch_consumers]
        finally:
            await deps.aclose()
            await database.dispose()


def _consumer(service: str, batch: Any) -> Consumer:
    applier = batch.applier
    handlers = getattr(applier, "handlers", None)
    applies = frozenset(handlers) if handlers is not None else applier.types
    route = getattr(applier, "route", None)
    return Consumer(
        durable=batch.durable,
        subject=batch.subject,
        stream=batch.stream,
        applies=applies,
        dead_letters=route.subject if route is not None else dlq_subject(REGENCY, service),
    )


def _address(subject: str) -> str:
    tokens = subject.split(".")
    if len(tokens) > 1 and tokens[1] == REGENCY:
        tokens[1] = "{regency}"
    return ".".join("{clinic_id}" if token == CLINIC else token for token in tokens)


def _within(pattern: str, subscription: str) -> bool:
    """Whether every subject ``pattern`` matches is one ``subscription`` matches (NATS wildcards:
    ``*`` one token, ``>`` one or more at the end)."""
    inner, outer = pattern.split("."), subscription.split(".")
    for i, token in enumerate(outer):
        if token == ">":
            return len(inner) > i and ">" not in inner[:i]
        if i >= len(inner) or inner[i] == ">":
            return False
        if token != "*" and token != inner[i]:
            return False
    return len(inner) == len(outer)


def _pattern(model: type[Event]) -> str:
    clinic = CLINIC if model.service_name in ("referral", "clinic") else None
    if issubclass(model, EventDeadLettered):
        clinic = None
    return event_subject_pattern(REGENCY, model, clinic_id=clinic)


def _key(model: type[Event]) -> str:
    return schema_file_name(model).removesuffix(".json")


def _camel(*words: str) -> str:
    parts = [p for word in words for p in re.split(r"[-_.\s]+", word) if p]
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _summary(model: type[Event]) -> str:
    return inspect.cleandoc(model.__doc__ or model.event_name()).split("\n\n")[0].replace("\n", " ")


class _Builder:
    """The parts of one document, filled in as channels and operations are added."""

    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}

    def message(self, model: type[Event]) -> str:
        key = _key(model)
        if key not in self.messages:
            dead = issubclass(model, EventDeadLettered)
            self.messages[key] = {
                "name": model.event_name(),
                "title": f"{model.type_name()}",
                "summary": _summary(model),
                "contentType": CLOUDEVENTS_JSON,
                "headers": {
                    "$ref": f"#/components/schemas/{'DeadLetterHeaders' if dead else 'EventHeaders'}"
                },
                "payload": {"$ref": f"#/components/schemas/{key}"},
                "correlationId": {
                    "description": "the chain of events this one belongs to",
                    "location": "$message.payload#/correlationid",
                },
            }
            self._schema(model)
        return key

    def _schema(self, model: type[Event]) -> None:
        schema = event_schema(model)
        key = _key(model)
        definitions = schema.pop("$defs", {})
        names: dict[str, str] = {}
        for name, definition in definitions.items():
            shared = self.schemas.get(name)
            names[name] = name if shared is None or shared == _rewrite(definition, {}) else f"{key}.{name}"
        for name, definition in definitions.items():
            self.schemas[names[name]] = _rewrite(definition, names)
        for keyword in ("$schema", "$id"):
            schema.pop(keyword, None)
        schema["x-pulih-schema-file"] = f"contracts/schemas/{schema_file_name(model)}"
        self.schemas[key] = _rewrite(schema, names)

    def channel(self, name: str, subject: str, description: str, models: Sequence[type[Event]]) -> None:
        address = _address(subject)
        channel: dict[str, Any] = {
            "address": address,
            "description": description,
            "messages": {self.message(m): {"$ref": f"#/components/messages/{_key(m)}"} for m in models},
        }
        parameters = {p: _PARAMETERS[p] for p in _PARAMETERS if f"{{{p}}}" in address}
        if parameters:
            channel["parameters"] = parameters
        self.channels[name] = channel

    def operation(
        self, name: str, action: str, channel: str, summary: str, models: Sequence[type[Event]]
    ) -> None:
        self.operations[name] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{_key(m)}"} for m in models],
        }


def _rewrite(node: Any, names: dict[str, str]) -> Any:
    """``node`` with its ``#/$defs/X`` references pointing at ``#/components/schemas/<names[X]>``."""
    if isinstance(node, dict):
        out = {key: _rewrite(value, names) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            out["$ref"] = f"#/components/schemas/{names.get(name, name)}"
        return out
    if isinstance(node, list):
        return [_rewrite(item, names) for item in node]
    return node


def document(spec: Any, consumers: Sequence[Consumer]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``spec`` with its ``consumers``."""
    build = _Builder()
    catalogue = [m for m in EVENT_TYPES.values() if m.is_concrete()]
    if spec.publishes:
        for model in catalogue:
            if model.service_name != spec.name or issubclass(model, EventDeadLettered):
                continue
            name = model.event_name()
            build.channel(name, _pattern(model), f"{name} events of the regency's {spec.name}", [model])
            build.operation(_camel("send", name), "send", name, f"{spec.name} publishes {name}", [model])
    letters: dict[str, list[str]] = {}
    for consumer in consumers:
        letters.setdefault(consumer.dead_letters, []).append(consumer.durable)
        on_subject = [m for m in catalogue if _within(_pattern(m), consumer.subject)]
        applied = [m for m in on_subject if consumer.applies is None or m.type_name() in consumer.applies]
        skipped = sorted(m.event_name() for m in on_subject if m not in applied)
        stream = _address(consumer.stream.replace(stream_name(REGENCY), "IBM_{regency}"))
        build.channel(
            consumer.durable,
            consumer.subject,
            f"What the durable consumer `{consumer.durable}` reads from the stream `{stream}`",
            on_subject,
        )
        about = (
            f"Durable pull consumer `{consumer.durable}` on the stream `{stream}`: it applies each "
            f"event once, in stream order, in batches, and acknowledges it after the commit; one it "
            f"cannot apply is dead-lettered on `{_address(consumer.dead_letters)}`."
        )
        if skipped:
            about += f" Acknowledged and skipped: {', '.join(skipped)}."
        build.operation(_camel("receive", consumer.durable), "receive", consumer.durable, about, applied)
    if letters:
        model = dead_letter_model(spec.name)
        for subject, durables in letters.items():
            name = model.event_name() if len(letters) == 1 else _camel(model.event_name(), subject)
            consumed = ", ".join(f"`{d}`" for d in durables)
            build.channel(name, subject, f"What {consumed} could not apply, and why", [model])
            build.operation(
                _camel("send", name),
                "send",
                name,
                f"{spec.name} dead-letters what {consumed} cannot apply",
                [model],
            )
    hub = any(not c.stream.startswith("IBM_") for c in consumers)
    server = (
        {
            "host": "localhost:4222",
            "protocol": "nats",
            "description": "The national hub's NATS JetStream (domain `national`): the stream "
            "`NATIONAL` sources every regency's aggregates, `NATIONAL_DLQ` holds the dead letters.",
        }
        if hub
        else {
            "host": f"localhost:{DEFAULT_NATS_PORT}",
            "protocol": "nats",
            "description": "The regency's NATS server with JetStream (domain `r{regency}`): the stream "
            "`IBM_{regency}` holds every event of the regency (`ibm.{regency}.>`). `pulih up` runs one "
            "on PULIH_NATS_PORT (14222); a deployment names its own in NATS_URL.",
        }
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"{spec.title} events",
            "version": spec.version,
            "description": inspect.cleandoc(
                f"""{spec.description}

                Every message is a CloudEvents 1.0 event in structured JSON
                (`{CLOUDEVENTS_JSON}`): the envelope (`id`, `type`, `source`, `subject`, `time`,
                `regency`, `correlationid`, `causationid`, `traceparent`…) with the event in `data`;
                each payload is the JSON Schema of `contracts/schemas` for that event. Readers are
                tolerant: ignore properties you do not know, never expect an identity (name, NIK,
                phone, address) in an event."""
            ),
        },
        "defaultContentType": CLOUDEVENTS_JSON,
        "servers": {"hub" if hub else "regency": server},
        "channels": build.channels,
        "operations": build.operations,
        "components": {
            "messages": dict(sorted(build.messages.items())),
            "schemas": {
                "EventHeaders": EVENT_HEADERS,
                "DeadLetterHeaders": DEAD_LETTER_HEADERS,
                **dict(sorted(build.schemas.items())),
            },
        },
    }


def unresolved_refs(doc: dict[str, Any]) -> list[str]:
    """The local ``$ref`` of ``doc`` that point nowhere; [] if none."""
    problems = []
    for ref in sorted(set(_refs(doc))):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            problems.append(ref)
    return problems


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def _documents() -> dict[str, dict[str, Any]]:
    docs = {}
    for name, reference in specs().items():
        spec = _load(reference)
        docs[name] = document(spec, await consumers_of(spec, national=name == NATIONAL))
    return docs


def render_documents() -> dict[str, str]:
    """File name (``<service>.json``) to file text of every document."""
    return {
        f"{name}.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        for name, doc in asyncio.run(_documents()).items()
    }


def write_documents(directory: Path) -> list[Path]:
    """Make ``directory`` hold exactly the current documents; returns the files written."""
    return write_files(directory, render_documents())


def check_documents(directory: Path, rendered: dict[str, str] | None = None) -> list[str]:
    """What differs between ``directory`` and the current documents, one line each; [] if none."""
    return drift(directory, rendered if rendered is not None else render_documents())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write DIR`` regenerates, ``--check DIR`` exits 1 on any drift."""
    return command_line(
        argv,
        prog="python -m pulih.kit.asyncapi",
        description="AsyncAPI 3.0 documents of the services' events",
        what="AsyncAPI documents",
        write_command=WRITE_COMMAND,
        render=render_documents,
    )


if __name__ == "__main__":
    raise SystemExit(main())
