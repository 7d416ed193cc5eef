"""When outreach hands an identity to another service: only referral, for an open referral of that
client addressed to the clinic it names, while the identity consent holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest

from pulih.contracts.consent import ConsentTerms
from pulih.kit.errors import Forbidden
from pulih.outreach.domain.disclosure import may_disclose_to_service, referral_named

CLIENT = uuid.uuid4()
REFERRAL = uuid.uuid4()
TODAY = date(2026, 3, 2)
IDENTITY = ConsentTerms(frozenset({"identity_to_clinic"}), date(2026, 2, 1))


@dataclass(frozen=True)
class Referral:
    referral_id: uuid.UUID = REFERRAL
    client_id: uuid.UUID = CLIENT
    clinic_id: str = "klinik-pratama-sehat"
    closed_on: date | None = None


def ask(**changes: Any) -> None:
    request: dict[str, Any] = {
        "service": "referral",
        "on_behalf_of": "klinik-pratama-sehat",
        "purpose": f"referral:{REFERRAL}",
        "client_id": CLIENT,
        "referral": Referral(),
        "consents": [IDENTITY],
        "today": TODAY,
    }
    may_disclose_to_service(**(request | changes))


def refusal(**changes: Any) -> str:
    with pytest.raises(Forbidden) as caught:
        ask(**changes)
    return caught.value.code


def test_referral_may_for_an_open_referral_with_consent() -> None:
    ask()


def test_the_purpose_names_the_referral() -> None:
    assert referral_named(f"referral:{REFERRAL}") == REFERRAL
    assert referral_named("referral:") is None and referral_named(f"home visit {REFERRAL}") is None


def test_each_missing_condition_has_its_own_code() -> None:
    assert refusal(service="rehab") == "service_not_allowed"
    assert refusal(on_behalf_of=None) == "clinic_required"
    assert refusal(purpose="home visit") == "purpose_not_referral"
    assert refusal(referral=None) == "unknown_referral"
    assert refusal(client_id=uuid.uuid4()) == "unknown_referral"
    assert refusal(referral=Referral(referral_id=uuid.uuid4())) == "unknown_referral"
    assert refusal(on_behalf_of="rsud-cilacap") == "not_addressed_clinic"
    assert refusal(referral=Referral(closed_on=date(2026, 3, 1))) == "referral_closed"
    assert refusal(consents=[]) == "consent_required"
    assert refusal(consents=[replace(IDENTITY, withdrawn_on=TODAY)]) == "consent_required"
    assert refusal(consents=[replace(IDENTITY, expires_on=date(2026, 3, 1))]) == "consent_required"
    assert refusal(consents=[replace(IDENTITY, scopes=frozenset({"referral"}))]) == "consent_required"


def test_the_service_is_checked_before_anything_it_sends() -> None:
    assert refusal(service="rehab", on_behalf_of=None, purpose="x", referral=None, consents=[]) == (
        "service_not_allowed"
    )
