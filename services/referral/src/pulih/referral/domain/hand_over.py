"""When a clinic may learn who a referred client is (the identity hand-over). Pure.

Only the clinic the referral is addressed to, only while the referral is open, only while the
client's ``identity_to_clinic`` consent holds, and never once the client was erased. Each
refusal's code is also the reason the audit records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol

from pulih.contracts.codes import ConsentScope
from pulih.kit.errors import Forbidden, Gone
from pulih.referral.domain.lifecycle import OPEN, ReferralStatus
from pulih.referral.domain.referring import Consent


class HandedOverReferral(Protocol):
    """What the rules read of the referral whose client's identity is asked for."""

    @property
    def clinic_id(self) -> str: ...

    @property
    def state(self) -> ReferralStatus: ...


def may_hand_over(
    referral: HandedOverReferral | None,
    asking_clinic: str | None,
    consents: Iterable[Consent],
    erased_on: date | None,
    today: date,
) -> None:
    """Refuse unless ``asking_clinic`` (None: the caller is no clinic) may have the identity.

    403 ``not_addressed_clinic`` (also for an unknown referral: the caller learns nothing),
    403 ``referral_closed``, 403 ``consent_required``; 410 ``client_erased``.
    """
    if asking_clinic is None or referral is None or referral.clinic_id != asking_clinic:
        raise Forbidden(
            "not_addressed_clinic", "only the clinic a referral is addressed to gets the identity"
        )
    if referral.state not in OPEN:
        raise Forbidden("referral_closed", f"the referral is {referral.state.value}")
    if not any(c.allows(ConsentScope.IDENTITY_TO_CLINIC, today) for c in consents):
        raise Forbidden("consent_required", "the client has not consented to give the clinic their identity")
    if erased_on is not None:
        raise Gone("client_erased", "this client's identity was erased")
