"""When a clinic may learn who a referred client is (the identity hand-over). Pure.

Only the clinic the referral is addressed to, only while the referral is open, only while the
client's ``identity_to_clinic`` consent holds, and never once the client was erased. Each
refusal's code is also the reason the audit records. The stated purpose is checked only after
the caller was found to be the addressed clinic: nobody else learns what a valid request looks like.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol

from pulih.contracts.codes import ConsentScope
from pulih.kit.errors import Forbidden, Gone, Invalid
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


PURPOSE_LENGTH = (3, 150)
"""How long the stated purpose of a hand-over may be, in characters."""


def stated_purpose(purpose: str) -> str:
    """Why the clinic needs the identity, as the audit records it: 3 to 150 printable characters
    (422 ``invalid_purpose`` on ``purpose``)."""
    shortest, longest = PURPOSE_LENGTH
    if not shortest <= len(purpose) <= longest or not purpose.isprintable():
        raise Invalid(
            "invalid_purpose", f"purpose must be {shortest} to {longest} printable characters", "purpose"
        )
    return purpose


PURPOSE_AUDITED = 200
"""How much of a stated purpose the audit keeps (an overlong one is refused, but still audited)."""


def audited_purpose(purpose: str) -> str:
    """The purpose as the audit records it, even a refused one: at most :data:`PURPOSE_AUDITED`
    characters, anything unprintable (a NUL byte no database column takes) as U+FFFD."""
    return "".join(c if c.isprintable() else "\ufffd" for c in purpose[:PURPOSE_AUDITED])
