"""The checked-in JSON Schemas are current, and every message we send validates against its own."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from event_samples import SAMPLED_EVENTS, VARIANTS, sample_message
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from pulih.contracts import EVENT_TYPES, Event
from pulih.contracts.events import (
    DEAD_LETTER_EVENTS,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ReferralAccepted,
    UnitEstablished,
)
from pulih.contracts.identity_keys import IDENTITY_KEYS
from pulih.contracts.schemas import (
    WRITE_COMMAND,
    check_schemas,
    main,
    render_schemas,
    schema_file_name,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _validator(model: type[Event]) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / schema_file_name(model)).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(model: type[Event], message: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator(model).iter_errors(message)]


def test_the_checked_in_schemas_are_current() -> None:
    problems = check_schemas(SCHEMAS)
    assert not problems, f"{', '.join(problems)}: run `{WRITE_COMMAND}` from the project root"


def test_there_is_one_schema_file_per_event() -> None:
    files = sorted(path.name for path in SCHEMAS.glob("*.json"))
    dead_letters = {f"{model.service_name}.EventDeadLettered.v1.json" for model in DEAD_LETTER_EVENTS}
    others = {f"{m.__name__}.v1.json" for m in EVENT_TYPES.values() if m not in DEAD_LETTER_EVENTS}
    assert files == sorted(dead_letters | others)
    assert len(files) == 30
    assert dead_letters == {
        "outreach.EventDeadLettered.v1.json",
        "rehab.EventDeadLettered.v1.json",
        "referral.EventDeadLettered.v1.json",
        "reporting.EventDeadLettered.v1.json",
    }


def test_a_schema_names_itself_and_describes_its_event() -> None:
    schema = json.loads((SCHEMAS / "ClientErased.v1.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://pulih.id/schemas/ClientErased.v1.json"
    assert schema["title"] == "ClientErased"
    assert schema["description"].startswith("A client's identity key was destroyed")
    assert schema["properties"]["type"]["const"] == "pulih.outreach.ClientErased.v1"
    assert "specversion" in schema["required"]


def test_rendering_is_deterministic() -> None:
    assert render_schemas() == render_schemas()
    assert all(text.endswith("}\n") for text in render_schemas().values())


@pytest.mark.parametrize("model", SAMPLED_EVENTS, ids=lambda model: model.__name__)
def test_every_message_validates_against_its_schema_file(model: type[Event]) -> None:
    message = json.loads(sample_message(model).to_json())
    assert _errors(model, message) == []


@pytest.mark.parametrize(("model", "overrides"), VARIANTS, ids=[model.__name__ for model, _ in VARIANTS])
def test_messages_with_empty_optional_fields_validate(model: type[Event], overrides: dict[str, Any]) -> None:
    message = json.loads(sample_message(model, **overrides).to_json())
    assert _errors(model, message) == []


def test_a_schema_refuses_another_event_s_message() -> None:
    message = json.loads(sample_message(ClientErased).to_json())
    assert _errors(ClientRegistered, message)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda m: m["data"].update(name="Budi"), "'name' should not be valid"),
        (lambda m: m["data"].update(sex="x"), "is not one of"),
        (lambda m: m["data"].pop("unit_id"), "'unit_id' is a required property"),
        (lambda m: m["data"].update(client_id="budi"), "is not a 'uuid'"),
        (lambda m: m.update(source="/pulih/3301/rehab"), "does not match"),
        (lambda m: m.pop("specversion"), "'specversion' is a required property"),
    ],
)
def test_a_schema_refuses_a_malformed_message(change: Any, complaint: str) -> None:
    message = json.loads(sample_message(ClientRegistered).to_json())
    change(message)
    errors = _errors(ClientRegistered, message)
    assert any(complaint in error for error in errors), errors


def test_check_names_missing_extra_and_drifted_files(tmp_path: Path) -> None:
    assert main(["--write", str(tmp_path)]) == 0
    assert check_schemas(tmp_path) == []
    (tmp_path / "ClientErased.v1.json").unlink()
    (tmp_path / "ClientScreened.v1.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "ClientVanished.v1.json").write_text("{}\n", encoding="utf-8")

    assert check_schemas(tmp_path) == [
        "missing: ClientErased.v1.json",
        "extra: ClientVanished.v1.json",
        "drifted: ClientScreened.v1.json",
    ]
    assert main(["--check", str(tmp_path)]) == 1

    assert main(["--write", str(tmp_path)]) == 0
    assert not (tmp_path / "ClientVanished.v1.json").exists()
    assert main(["--check", str(tmp_path)]) == 0


def test_the_module_runs_as_a_command(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pulih.contracts.schemas"]
    checked = subprocess.run(
        [*command, "--check", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 1
    assert "missing: ClientScreened.v1.json" in checked.stderr
    assert WRITE_COMMAND in checked.stderr

    written = subprocess.run(
        [*command, "--write", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert written.returncode == 0, written.stderr
    assert len(list(tmp_path.glob("*.json"))) == len(EVENT_TYPES)


def test_a_schema_accepts_an_optional_field_and_a_dataschema_it_does_not_name() -> None:
    # a clinic validating with the schemas keeps working when Pulih adds an optional field
    message = json.loads(sample_message(ReferralAccepted).to_json())
    message["dataschema"] = "https://pulih.id/schemas/ReferralAccepted.v1.json"
    message["data"]["note"] = "appointment confirmed"
    message["data"]["clinic_system"] = {"name_of_product": "simrs", "versions": [1, 2]}
    assert _errors(ReferralAccepted, message) == []


@pytest.mark.parametrize("key", IDENTITY_KEYS)
def test_a_schema_refuses_an_identity_key_at_every_level(key: str) -> None:
    places = {
        "envelope": lambda m: m.update({key: "x"}),
        "data": lambda m: m["data"].update({key: "x"}),
        "nested model": lambda m: m["data"]["substances"][0].update({key: "x"}),
        "inside an unknown field": lambda m: m["data"].update(extra={"people": [{key: "x"}]}),
        "inside an unknown extension": lambda m: m.update(clinicext={"who": {key: "x"}}),
    }
    for place, put in places.items():
        message = json.loads(sample_message(ClientScreened).to_json())
        put(message)
        errors = _errors(ClientScreened, message)
        assert any(f"'{key}' should not be valid" in error for error in errors), (place, errors)


def test_a_field_an_event_declares_is_allowed_even_if_it_is_called_name() -> None:
    message = json.loads(sample_message(UnitEstablished).to_json())
    assert _errors(UnitEstablished, message) == []
    message["data"]["extra"] = {"name": "Budi"}
    assert _errors(UnitEstablished, message)
