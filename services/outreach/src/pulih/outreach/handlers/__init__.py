"""Outreach's use cases: load what the command is about, let the rules decide, store and emit.

Each takes the unit of work of the command (or, for reads, the store), the regency's ``today``
where dates are checked, and a request body, which is the command itself (``RegisterClient``,
``ScreenClient``). The caller's access to the unit or client is checked before the body's
content, so a caller with no right learns nothing of the rules. The rules are in :mod:`domain`;
the events go to the outbox through ``uow.emit`` only. The read model of referral's events that
outreach checks an identity hand-over against is the kit's (:data:`pulih.outreach.store.REFERRALS`).
"""

from pulih.outreach.handlers.clients import (
    erase_client,
    possible_duplicates,
    register_client,
    resolve_duplicate,
)
from pulih.outreach.handlers.consents import record_consent, withdraw_consent
from pulih.outreach.handlers.identity import (
    IDENTITY_READERS,
    audit_identity_attempt,
    read_identity,
)
from pulih.outreach.handlers.screenings import screen_client
from pulih.outreach.handlers.units import (
    deactivate_agent,
    establish_unit,
    record_outreach,
    register_agent,
)

__all__ = [
    "IDENTITY_READERS",
    "audit_identity_attempt",
    "deactivate_agent",
    "erase_client",
    "establish_unit",
    "possible_duplicates",
    "read_identity",
    "record_consent",
    "record_outreach",
    "register_agent",
    "register_client",
    "resolve_duplicate",
    "screen_client",
    "withdraw_consent",
]
