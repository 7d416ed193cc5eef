"""The rules a service checks that no OpenAPI 3.1 document can say, and how schemathesis is told
of them: a schemathesis hooks file (``SCHEMATHESIS_HOOKS``) and the configuration it goes with.

JSON Schema judges one value at a time, against constants: it cannot compare a date with the
regency's today, two fields of a body (a consent's expiry with its giving), two query parameters
(``from`` with ``to``), or a value with what earlier requests stored (an agent deactivated since).
A schema-valid request that breaks such a rule is refused with ``422`` and the rule's error code;
schemathesis's ``positive_data_acceptance`` (ST202) would call that a schema-valid request
refused.

:data:`RULES` names, for each operation, the error codes of those rules and why no schema can say
each. :func:`configuration` lets ``positive_data_acceptance`` expect a ``422`` from these
operations only (a ``schemathesis.toml``), and the check :func:`refused_only_by_a_rule_no_schema_can_say`
(this file, loaded as schemathesis's hooks) fails any ``422`` to a schema-valid request of them
whose code is not one of its operation's rules. Every other operation, status and code stays
under the plain check.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import schemathesis

_TODAY = "a date after the regency's today (its clock's, plus a day's slack), which no schema knows"
_DATED = {"date_in_future": _TODAY}
_RANGE = {
    "from_after_to": "`from` after `to`: a comparison of two query parameters",
    "range_too_long": "more than 260 periods from `from` to `to`, whose default is today's period",
}
_NAMED = (
    "a letter of any script: a pattern can say it only as a list of some 16,000 characters of code "
    "point ranges (Python's re has no \\p{L}), which buried the document; its description says it"
)
_NAME = {
    "no_letter": _NAMED,
    "blank": "blank once trimmed: white space of any script, which the same list would have to spell",
    "control_character": "a control or invisible character of any script: the same list again",
}
_AGENT = {
    "unknown_agent": "the agent is not one of the unit's: what the store holds",
    "agent_inactive": "the agent was deactivated by an earlier request",
}

RULES: dict[str, dict[str, str]] = {
    "POST /v1/units": {**_DATED, **_NAME},  # a day's floor, 1900, its pattern says (pulih.kit.happened_on)
    "POST /v1/clients": _NAME,
    "POST /v1/units/{unit_id}/agents": _DATED,
    "POST /v1/agents/{agent_id}/deactivate": {
        **_DATED,
        "before_training": "before the agent's training day, which an earlier request set",
        "date_before_unit": "before the unit's establishment, which an earlier request set",
    },
    "POST /v1/units/{unit_id}/activities": {
        **_DATED,
        **_AGENT,
        "date_before_unit": "held before the unit's establishment, which an earlier request set",
        "date_before_training": "held before the agent's training, which an earlier request set",
    },
    "POST /v1/clients/{client_id}/consents": {
        **_DATED,
        "date_before_registration": "given before the client's registration, which an earlier request set",
        "expires_before_given": "`expires_on` before `given_on`: a comparison of two fields",
    },
    "POST /v1/clients/{client_id}/consents/{consent_id}/withdraw": {
        **_DATED,
        "withdrawn_before_given": "before the consent's giving, which an earlier request set",
    },
    "GET /v1/indicators": {
        **_RANGE,
        "invalid_period": "`from` or `to` in the other form than `by` says (a week when `by` is "
        "`month`): a rule across two query parameters",
        "invalid_id": "an `id` of another level's form than `level` says (a unit's UUID, a "
        "village's 10 digits, a district's 6, the regency's 4): a rule across two query parameters",
        "too_many_rows": "more org units (those the store holds) by periods than 50,000 rows",
    },
    "GET /v1/qol/summary": _RANGE,
    "GET /v1/referrals/summary": _RANGE,
    "GET /v1/units/phases": _RANGE,
}
"""For each operation (schemathesis's label), the codes of the ``422`` refusals of schema-valid
requests that no schema can prevent, and why."""

MET = "PULIH_SCHEMATHESIS_RULES_MET"
"""The environment variable naming the file the check adds each rule it met to."""

POSITIVE_DATA_ACCEPTANCE = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""What ``positive_data_acceptance`` expects by default (schemathesis's own list)."""


def configuration(operations: Iterable[str]) -> str:
    """A ``schemathesis.toml`` in which ``positive_data_acceptance`` also expects ``422`` from
    those of ``operations`` (a service's) that :data:`RULES` names, and only from them."""
    expected = json.dumps([*POSITIVE_DATA_ACCEPTANCE, "422"])
    return "".join(
        f"[[operations]]\ninclude-name = {json.dumps(operation)}\n"
        f"checks.positive_data_acceptance.expected-statuses = {expected}\n\n"
        for operation in sorted(RULES.keys() & set(operations))
    )


def _code(body: Any) -> Any:
    return body.get("code") if isinstance(body, dict) else None


@schemathesis.check
def refused_only_by_a_rule_no_schema_can_say(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request of an operation of :data:`RULES` refused with ``422`` names one of
    its operation's rules (the error body's ``code``)."""
    rules = RULES.get(case.operation.label)
    if rules is None or response.status_code != 422 or case.meta is None:
        return None
    if not case.meta.generation.mode.is_positive:
        return None
    try:
        code = _code(response.json())
    except ValueError:
        code = None
    if code not in rules:
        raise AssertionError(
            f"Schema-valid request refused with 422 {code!r}, not one of the rules no schema can "
            f"say for {case.operation.label} ({', '.join(sorted(rules))})"
        )
    met = os.environ.get(MET)
    if met:  # the test says which rules it met
        with open(met, "a", encoding="utf-8") as out:
            out.write(f"{case.operation.label}\t{code}\n")
    return None


def met(path: Path) -> set[tuple[str, str]]:
    """The (operation, code) of every rule a run met, as the check wrote them to ``path``."""
    if not path.exists():
        return set()
    lines = path.read_text(encoding="utf-8").splitlines()
    return {(operation, code) for operation, code in (line.split("\t") for line in lines)}
