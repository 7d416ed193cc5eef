"""Pulih's event contract: the CloudEvents envelope, every event, subjects and JSON Schemas.

Publish::

    event = new_event(ClientScreened(...), regency="3301")
    subject = subject_for(event, "3301")      # ibm.3301.outreach.client_screened
    body = event.to_json()

Consume::

    event = parse_event(body)                 # InvalidEvent(reason) if it is not one

Reading is tolerant: attributes and data fields this version does not know are ignored, except
identity keys (``identity_keys.IDENTITY_KEYS``), which are refused. Building is strict: a model
refuses a field the catalogue does not have.
"""

from pulih.contracts import codes, events
from pulih.contracts.consent import ConsentTerms
from pulih.contracts.envelope import CloudEvent, envelope_type, new_event, new_event_id
from pulih.contracts.event import SERVICES, Event
from pulih.contracts.events import (
    ALL_EVENTS,
    clinic,
    dead_letters,
    outreach,
    referral,
    rehab,
    reporting,
)
from pulih.contracts.registry import (
    DEFAULT_REGISTRY,
    EVENT_TYPES,
    EventRegistry,
    IdentityRefused,
    InvalidEvent,
    model_for,
    parse_event,
    register_upcaster,
    upcast,
)
from pulih.contracts.subjects import (
    clinic_answers,
    dlq_subject,
    event_subject_pattern,
    referrals_for_clinic,
    regency_subjects,
    stream_name,
    subject_for,
)

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_REGISTRY",
    "EVENT_TYPES",
    "SERVICES",
    "CloudEvent",
    "ConsentTerms",
    "Event",
    "EventRegistry",
    "IdentityRefused",
    "InvalidEvent",
    "clinic",
    "clinic_answers",
    "codes",
    "dead_letters",
    "dlq_subject",
    "envelope_type",
    "event_subject_pattern",
    "events",
    "model_for",
    "new_event",
    "new_event_id",
    "outreach",
    "parse_event",
    "referral",
    "referrals_for_clinic",
    "regency_subjects",
    "register_upcaster",
    "rehab",
    "reporting",
    "stream_name",
    "subject_for",
    "upcast",
]
