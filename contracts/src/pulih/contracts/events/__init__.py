"""Every event of the catalogue, one module per publishing service."""

from pulih.contracts.event import Event
from pulih.contracts.events import clinic, outreach, referral, rehab, reporting
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
    OutreachActivityRecorded,
    SubstanceResult,
    UnitEstablished,
)
from pulih.contracts.events.referral import (
    ReferralCancelled,
    ReferralClosed,
    ReferralEscalated,
    ReferredToClinic,
)
from pulih.contracts.events.rehab import (
    ClientDischarged,
    ClientEnrolled,
    FollowUpRecorded,
    PhaseCompleted,
    QualityOfLifeAssessed,
    SessionHeld,
)
from pulih.contracts.events.reporting import AggregateReported

ALL_EVENTS: tuple[type[Event], ...] = (
    UnitEstablished,
    AgentRegistered,
    AgentDeactivated,
    OutreachActivityRecorded,
    ClientRegistered,
    ConsentRecorded,
    ConsentWithdrawn,
    ClientScreened,
    ClientErased,
    ClientEnrolled,
    SessionHeld,
    QualityOfLifeAssessed,
    PhaseCompleted,
    ClientDischarged,
    FollowUpRecorded,
    ReferredToClinic,
    ReferralEscalated,
    ReferralCancelled,
    ReferralClosed,
    ReferralAccepted,
    ReferralDeclined,
    ClientAttended,
    TreatmentCompleted,
    AggregateReported,
)
"""The current version of every event, in catalogue order."""

__all__ = [
    "ALL_EVENTS",
    "AgentDeactivated",
    "AgentRegistered",
    "AggregateReported",
    "ClientAttended",
    "ClientDischarged",
    "ClientEnrolled",
    "ClientErased",
    "ClientRegistered",
    "ClientScreened",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "FollowUpRecorded",
    "OutreachActivityRecorded",
    "PhaseCompleted",
    "QualityOfLifeAssessed",
    "ReferralAccepted",
    "ReferralCancelled",
    "ReferralClosed",
    "ReferralDeclined",
    "ReferralEscalated",
    "ReferredToClinic",
    "SessionHeld",
    "SubstanceResult",
    "TreatmentCompleted",
    "UnitEstablished",
    "clinic",
    "outreach",
    "referral",
    "rehab",
    "reporting",
]
