"""NATS subjects and stream names of the catalogue; pure functions, no I/O.

```
ibm.<regency>.<service>.<event_name>                outreach, rehab, reporting
ibm.<regency>.referral.<event_name>.<clinic_id>     referral events addressed to one clinic
ibm.<regency>.clinic.<clinic_id>.<event_name>       what a clinic answers
ibm.<regency>.dlq.<service>                         events a consumer could not apply
```
Every builder raises ``ValueError`` for a malformed regency code or clinic id.
"""

import re

from pulih.contracts.envelope import CloudEvent
from pulih.contracts.event import Event
from pulih.contracts.events.dead_letters import EventDeadLettered

_REGENCY = re.compile(r"^[0-9]{4}$")
_CLINIC_ID = re.compile(r"^[a-z0-9-]{1,64}$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_-]*$")


def _regency(regency: str) -> str:
    if not isinstance(regency, str) or not _REGENCY.match(regency):
        raise ValueError(f"regency must be a 4-digit Kemendagri code, not {regency!r}")
    return regency


def _clinic(clinic_id: str) -> str:
    if not isinstance(clinic_id, str) or not _CLINIC_ID.match(clinic_id):
        raise ValueError(f"clinic_id must be a slug of [a-z0-9-] (at most 64), not {clinic_id!r}")
    return clinic_id


def stream_name(regency: str) -> str:
    """The JetStream stream holding every event of ``regency``, e.g. ``IBM_3301``."""
    return f"IBM_{_regency(regency)}"


def regency_subjects(regency: str) -> str:
    """The subjects of that stream: everything of the regency, e.g. ``ibm.3301.>``."""
    return f"ibm.{_regency(regency)}.>"


def subject_for(event: CloudEvent[Event] | Event, regency: str, *, clinic_id: str | None = None) -> str:
    """The subject to publish ``event`` (an envelope or bare data) on in ``regency``.

    Referral events take the clinic from their data (``clinic_id``, if given, must agree);
    clinic events need ``clinic_id``, the clinic answering; a service's dead letter goes to its
    dead-letter subject. Raises ``ValueError`` when the
    clinic is missing, superfluous or contradicts the data, or when ``regency`` is not the
    event's own.
    """
    if isinstance(event, CloudEvent):
        if event.regency != regency:
            raise ValueError(f"event belongs to regency {event.regency}, not {regency!r}")
        data: Event = event.data
    else:
        data = event
    model = type(data)
    if not model.is_concrete():
        raise ValueError(f"{model.__name__} is not a concrete event")
    if issubclass(model, EventDeadLettered):
        if clinic_id is not None:
            raise ValueError(f"{model.event_name()} subjects have no clinic")
        return dlq_subject(regency, model.service_name)
    base = f"ibm.{_regency(regency)}.{model.service_name}"
    token = model.subject_token()
    if model.service_name == "referral":
        addressed_to = _clinic(getattr(data, "clinic_id"))  # noqa: B009 (not on Event)
        if clinic_id is not None and clinic_id != addressed_to:
            raise ValueError(f"clinic_id {clinic_id!r} contradicts the data's {addressed_to!r}")
        return f"{base}.{token}.{addressed_to}"
    if model.service_name == "clinic":
        if clinic_id is None:
            raise ValueError(f"{model.event_name()} needs the clinic_id of the clinic answering")
        return f"{base}.{_clinic(clinic_id)}.{token}"
    if clinic_id is not None:
        raise ValueError(f"{model.event_name()} subjects have no clinic")
    if model.about == "regency" and data.subject_id() != regency:
        raise ValueError(f"{model.event_name()} of {data.subject_id()} is not about {regency}")
    return f"{base}.{token}"


def event_subject_pattern(regency: str, model: type[Event], *, clinic_id: str | None = None) -> str:
    """The subject to subscribe to for every ``model`` event of ``regency``.

    The clinic slot of referral and clinic events is ``*`` unless ``clinic_id`` narrows it,
    e.g. ``ibm.3301.referral.referred_to_clinic.*`` or ``ibm.3301.clinic.*.referral_accepted``.
    """
    if not model.is_concrete():
        raise ValueError(f"{model.__name__} is not a concrete event")
    if issubclass(model, EventDeadLettered):
        if clinic_id is not None:
            raise ValueError(f"{model.event_name()} subjects have no clinic")
        return dlq_subject(regency, model.service_name)
    base = f"ibm.{_regency(regency)}.{model.service_name}"
    token = model.subject_token()
    slot = "*" if clinic_id is None else _clinic(clinic_id)
    if model.service_name == "referral":
        return f"{base}.{token}.{slot}"
    if model.service_name == "clinic":
        return f"{base}.{slot}.{token}"
    if clinic_id is not None:
        raise ValueError(f"{model.event_name()} subjects have no clinic")
    return f"{base}.{token}"


def referrals_for_clinic(regency: str, clinic_id: str) -> str:
    """Every referral event addressed to one clinic: ``ibm.<r>.referral.*.<clinic_id>``."""
    return f"ibm.{_regency(regency)}.referral.*.{_clinic(clinic_id)}"


def clinic_answers(regency: str, clinic_id: str) -> str:
    """Everything one clinic publishes: ``ibm.<r>.clinic.<clinic_id>.>``."""
    return f"ibm.{_regency(regency)}.clinic.{_clinic(clinic_id)}.>"


def dlq_subject(regency: str, service: str) -> str:
    """Where ``service`` puts the events it could not apply: ``ibm.<r>.dlq.<service>``."""
    if not isinstance(service, str) or not _SERVICE.match(service):
        raise ValueError(f"service must be a lower-case name, not {service!r}")
    return f"ibm.{_regency(regency)}.dlq.{service}"
