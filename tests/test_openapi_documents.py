"""Every service's OpenAPI document, as a client generator reads it: readable unique operation
ids, a tag on every operation, every command with its ``Idempotency-Key``, every error with the
kit's error body and none with FastAPI's ``HTTPValidationError``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from pulih.kit.settings import Settings
from pulih.kit.testing import make_settings
from pulih.outreach.app import build as outreach
from pulih.referral.app import build as referral
from pulih.rehab.app import build as rehab
from pulih.reporting.app import build as reporting

ERROR = {"$ref": "#/components/schemas/ErrorBody"}
BUILDS: dict[str, tuple[Callable[[Settings], FastAPI], dict[str, str]]] = {
    "outreach": (outreach, {}),
    "rehab": (rehab, {}),
    "referral": (referral, {}),
    "reporting": (reporting, {}),
    "reporting-national": (reporting, {"PULIH_REPORTING_MODE": "national"}),
}


@pytest.fixture(params=sorted(BUILDS))
def document(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    build, extra = BUILDS[request.param]
    return build(make_settings(tmp_path, nats_url="nats://127.0.0.1:1", **extra)).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_operation_ids_are_unique_camel_case_and_every_operation_is_tagged(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", i) for i in ids), ids
    assert all(operation.get("tags") for _, _, operation in _operations(document))


def test_every_command_takes_an_idempotency_key(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if method == "POST":
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" in names, f"{method} {path}"
            success = next(r for status, r in operation["responses"].items() if status.startswith("2"))
            assert "Idempotent-Replayed" in success["headers"], f"{method} {path}"


def test_every_error_is_the_kits_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    for method, path, operation in _operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45" and path != "/readyz"}
        if operation.get("security"):
            assert {"400", "401", "403", "404", "409", "410", "422", "503"} <= errors.keys(), (
                f"{method} {path}"
            )
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ERROR, f"{method} {path} {status}"
