"""The AsyncAPI documents in ``contracts/asyncapi``: up to date, valid AsyncAPI 3.0, and saying
what the code does.

A clinic developer reads one document, not the source: each service's lists every event it
sends (the catalogue's events of that service, and its dead letter) and every durable consumer
its ``subscribe`` registers, with the events it applies; each payload accepts what the service
really publishes (a sample of every event) and refuses an identity, as ``contracts/schemas`` does.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pulih.contracts import CloudEvent, Event
from pulih.contracts.events.dead_letters import EventDeadLettered
from pulih.contracts.registry import EVENT_TYPES
from pulih.contracts.schemas import schema_file_name
from pulih.kit import asyncapi
from pulih.kit.outbox import envelope_headers

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ROOT / "contracts" / "asyncapi"
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "schemas" / "asyncapi-3.0.0.json"
SERVICES = ("outreach", "rehab", "referral", "reporting")


def _samples() -> Any:
    spec = importlib.util.spec_from_file_location("event_samples", ROOT / "contracts/tests/event_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("event_samples", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return asyncapi.render_documents()


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DOCUMENTS.glob("*.json"))}


def test_the_checked_in_documents_are_the_generated_ones(rendered: dict[str, str]) -> None:
    problems = asyncapi.check_documents(DOCUMENTS, rendered)
    assert not problems, f"{problems}: run {asyncapi.WRITE_COMMAND}"
    assert set(rendered) == {f"{name}.json" for name in (*SERVICES, asyncapi.NATIONAL)}


def test_each_document_is_valid_asyncapi_3_0(documents: dict[str, dict[str, Any]]) -> None:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    for name, doc in documents.items():
        errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
        assert not errors, f"{name}: {errors[:5]}"
        assert doc["asyncapi"] == "3.0.0"
        assert asyncapi.unresolved_refs(doc) == [], name


def _sent(doc: dict[str, Any]) -> set[str]:
    return {
        ref["$ref"].rsplit("/", 1)[1]
        for op in doc["operations"].values()
        if op["action"] == "send"
        for ref in op["messages"]
    }


def test_a_service_sends_its_events_of_the_catalogue_and_its_dead_letter(
    documents: dict[str, dict[str, Any]],
) -> None:
    for service in SERVICES:
        expected = {
            schema_file_name(m).removesuffix(".json")
            for m in EVENT_TYPES.values()
            if m.is_concrete() and m.service_name == service
        }
        assert _sent(documents[service]) == expected, service
    assert _sent(documents[asyncapi.NATIONAL]) == {"reporting.EventDeadLettered.v1"}
    letters = documents["referral"]["channels"]["EventDeadLettered"]
    assert letters["address"] == "ibm.{regency}.dlq.referral"
    referred = documents["referral"]["channels"]["ReferredToClinic"]
    assert referred["address"] == "ibm.{regency}.referral.referred_to_clinic.{clinic_id}"
    assert set(referred["parameters"]) == {"regency", "clinic_id"}


def test_each_durable_consumer_is_received_with_the_events_it_applies(
    documents: dict[str, dict[str, Any]],
) -> None:
    receives = {
        name: {
            op["channel"]["$ref"].rsplit("/", 1)[1]: (
                doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"],
                sorted(ref["$ref"].rsplit("/", 1)[1] for ref in op["messages"]),
            )
            for op in doc["operations"].values()
            if op["action"] == "receive"
        }
        for name, doc in documents.items()
    }
    assert set(receives["outreach"]) == {"outreach-referral-events"}
    address, applied = receives["outreach"]["outreach-referral-events"]
    assert address == "ibm.{regency}.referral.>"
    assert applied == ["ReferralClosed.v1", "ReferredToClinic.v1"]
    assert set(receives["rehab"]) == {"rehab-outreach-events", "rehab-referral-events"}
    assert receives["referral"]["referral-clinic-answers"] == (
        "ibm.{regency}.clinic.>",
        ["ClientAttended.v1", "ReferralAccepted.v1", "ReferralDeclined.v1", "TreatmentCompleted.v1"],
    )
    assert receives["reporting"]["reporting-stream"][0] == "ibm.{regency}.>"
    assert receives[asyncapi.NATIONAL] == {
        "reporting-national": ("ibm.*.reporting.aggregate_reported", ["AggregateReported.v1"])
    }


def _payload_validator(doc: dict[str, Any], key: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{key}", "components": doc["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_every_payload_takes_what_the_service_publishes_and_refuses_an_identity(
    documents: dict[str, dict[str, Any]],
) -> None:
    samples = _samples()
    checked = 0
    for doc in documents.values():
        for key, message in doc["components"]["messages"].items():
            model = next(m for m in EVENT_TYPES.values() if schema_file_name(m) == f"{key}.json")
            event: CloudEvent[Event] = samples.sample_message(model)
            payload = json.loads(event.to_json())
            validator = _payload_validator(doc, message["payload"]["$ref"].rsplit("/", 1)[1])
            assert not list(validator.iter_errors(payload)), key
            assert not validator.is_valid({**payload, "data": {**payload["data"], "nik": "3301010101010001"}})
            assert not validator.is_valid({**payload, "type": "pulih.x.Other.v1"})
            headers = envelope_headers(event)
            named = message["headers"]["$ref"].rsplit("/", 1)[1]
            assert set(headers) <= set(doc["components"]["schemas"][named]["properties"]), key
            assert (named == "DeadLetterHeaders") == issubclass(model, EventDeadLettered), key
            checked += 1
    assert checked >= len(EVENT_TYPES)


def test_a_payload_is_the_checked_in_json_schema_of_its_event(documents: dict[str, dict[str, Any]]) -> None:
    for doc in documents.values():
        schemas = doc["components"]["schemas"]
        for key, message in doc["components"]["messages"].items():
            payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
            contract = json.loads((ROOT / payload["x-pulih-schema-file"]).read_text())
            assert payload["x-pulih-schema-file"] == f"contracts/schemas/{key}.json"
            assert payload["properties"].keys() == contract["properties"].keys()
            assert payload["required"] == contract["required"]
            assert payload["properties"]["type"] == contract["properties"]["type"]
