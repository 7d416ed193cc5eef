"""When outreach hands a client's identity to another Pulih service. Pure.

A ``service`` token is not a master key. Outreach checks for itself, from its own consents and
its own read model of referral's events, what referral checked before asking:

1. only the referral service reads identities (its token's ``sub`` is ``referral``); every other
   service (rehab, reporting…) never needs one;
2. it names the clinic it acts for (``on_behalf_of``);
3. its ``purpose`` is ``referral:<referral_id>``;
4. that referral is one outreach heard of, about this client, addressed to that clinic, and
   still open;
5. the client's ``identity_to_clinic`` consent holds today.

Each refusal is a 403 whose code is also the reason the audit records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Final, Protocol
from uuid import UUID

from pulih.contracts.codes import ConsentScope
from pulih.contracts.consent import ConsentTerms
from pulih.kit.errors import Forbidden

IDENTITY_SERVICES: Final = frozenset({"referral"})
"""The services that may read an identity, by their token's ``sub``."""

PURPOSE_PREFIX: Final = "referral:"


class DisclosedReferral(Protocol):
    """What the rule reads of the referral a service names."""

    @property
    def referral_id(self) -> UUID: ...

    @property
    def client_id(self) -> UUID: ...

    @property
    def clinic_id(self) -> str: ...

    @property
    def closed_on(self) -> date | None: ...


def referral_named(purpose: str) -> UUID | None:
    """The referral a purpose ``referral:<referral_id>`` names, or None."""
    if not purpose.startswith(PURPOSE_PREFIX):
        return None
    try:
        return UUID(purpose.removeprefix(PURPOSE_PREFIX))
    except ValueError:
        return None


def may_disclose_to_service(
    *,
    service: str,
    on_behalf_of: str | None,
    purpose: str,
    client_id: UUID,
    referral: DisclosedReferral | None,
    consents: Iterable[ConsentTerms],
    today: date,
) -> None:
    """Refuse unless ``service`` may read ``client_id``'s identity for ``purpose``.

    ``referral`` is the known referral :func:`referral_named` finds in ``purpose`` (None if
    there is none). 403 ``service_not_allowed``, ``clinic_required``, ``purpose_not_referral``,
    ``unknown_referral`` (not known, or about another client), ``not_addressed_clinic``,
    ``referral_closed``, ``consent_required``.
    """
    if service not in IDENTITY_SERVICES:
        raise Forbidden("service_not_allowed", f"the {service} service does not read identities")
    if not on_behalf_of:
        raise Forbidden(
            "clinic_required", "name the clinic the identity is for (on_behalf_of)", "on_behalf_of"
        )
    named = referral_named(purpose)
    if named is None:
        raise Forbidden("purpose_not_referral", "the purpose must be referral:<referral_id>", "purpose")
    if referral is None or referral.referral_id != named or referral.client_id != client_id:
        raise Forbidden("unknown_referral", f"no referral {named} of this client is known here", "purpose")
    if referral.clinic_id != on_behalf_of:
        raise Forbidden("not_addressed_clinic", "the referral is addressed to another clinic", "on_behalf_of")
    if referral.closed_on is not None:
        raise Forbidden("referral_closed", f"the referral was closed on {referral.closed_on}", "purpose")
    if not any(terms.allows(ConsentScope.IDENTITY_TO_CLINIC, today) for terms in consents):
        raise Forbidden("consent_required", "the client has not consented to give the clinic their identity")
