"""The closed code lists of the event catalogue, and the constrained values events carry.

Every code is lower-case snake_case on the wire. Indonesian programme terms stay Indonesian;
each enum's docstring explains them once. IBM is *Intervensi Berbasis Masyarakat*, the
community-based intervention programme that Pulih supports.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

RegencyCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
"""Kemendagri regency code without dots, e.g. ``3301`` (Cilacap)."""

VillageCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
"""Kemendagri village (desa/kelurahan) code without dots: ten digits."""

ClinicId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", max_length=64)]
"""A clinic's slug, as it appears in subjects (``[a-z0-9-]+``, at most 64 characters)."""

ProgrammeCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", max_length=64)]
"""A programme's slug, e.g. ``ibm-16w-2021``."""

Period = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
"""A reporting month, ``YYYY-MM``."""

Count = Annotated[int, Field(ge=0)]
"""A number of people, sessions or units: never negative."""


class Sex(StrEnum):
    """Sex recorded at registration."""

    M = "m"
    F = "f"


class AgeBand(StrEnum):
    """Age band at registration (no date of birth travels in events)."""

    UNDER_15 = "under_15"
    AGE_15_24 = "15_24"
    AGE_25_34 = "25_34"
    AGE_35_44 = "35_44"
    AGE_45_PLUS = "45_plus"


class CameThrough(StrEnum):
    """How a client came to the IBM unit."""

    OUTREACH = "outreach"
    SELF = "self"
    FAMILY = "family"
    COMMUNITY = "community"
    BACK_REFERRAL = "back_referral"


class OutreachKind(StrEnum):
    """Kind of outreach activity a recovery agent holds.

    ``sosialisasi``: a public awareness session (village meeting, school, mosque) about drugs
    and the programme. ``pemetaan``: mapping the area: where people at risk are and who can
    reach them. ``penjangkauan``: outreach proper: contacting people who use drugs one by one
    and inviting them to screening.
    """

    SOSIALISASI = "sosialisasi"
    PEMETAAN = "pemetaan"
    PENJANGKAUAN = "penjangkauan"


class ConsentScope(StrEnum):
    """What a client consented to: the programme itself, being referred, and the clinic
    receiving their identity for a referral."""

    PROGRAMME = "programme"
    REFERRAL = "referral"
    IDENTITY_TO_CLINIC = "identity_to_clinic"


class Instrument(StrEnum):
    """Screening instrument (WHO ASSIST version 3)."""

    ASSIST_V3 = "assist_v3"


class Substance(StrEnum):
    """Substance classes of the ASSIST questionnaire."""

    TOBACCO = "tobacco"
    ALCOHOL = "alcohol"
    CANNABIS = "cannabis"
    COCAINE = "cocaine"
    AMPHETAMINE_TYPE_STIMULANTS = "amphetamine_type_stimulants"
    INHALANTS = "inhalants"
    SEDATIVES = "sedatives"
    HALLUCINOGENS = "hallucinogens"
    OPIOIDS = "opioids"
    OTHER = "other"


class RiskLevel(StrEnum):
    """ASSIST risk level of a substance score, or a client's overall risk."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class Recommendation(StrEnum):
    """What screening recommends: brief advice, the IBM programme, or referral to a clinic."""

    ADVICE = "advice"
    IBM_PROGRAMME = "ibm_programme"
    REFERRAL = "referral"


class SessionKind(StrEnum):
    """Kind of programme session.

    ``edukasi``: education about drugs and health. ``konseling``: one-to-one counselling.
    ``kelompok``: group session. ``keluarga``: session with the client's family.
    ``vokasional``: vocational training. ``pemantauan``: monitoring visit (check-in).
    """

    EDUKASI = "edukasi"
    KONSELING = "konseling"
    KELOMPOK = "kelompok"
    KELUARGA = "keluarga"
    VOKASIONAL = "vokasional"
    PEMANTAUAN = "pemantauan"


class QolTimepoint(StrEnum):
    """When a WHOQOL-BREF quality-of-life assessment was taken."""

    BASELINE = "baseline"
    EXIT = "exit"
    FOLLOW_UP = "follow_up"


class Phase(StrEnum):
    """Phase of the 16-week programme.

    ``skrining``: screening. ``penerimaan_awal``: initial intake (assessment, plan, consent).
    ``intervensi``: the intervention itself (sessions). ``bina_lanjut``: aftercare, follow-up
    support after the intervention.
    """

    SKRINING = "skrining"
    PENERIMAAN_AWAL = "penerimaan_awal"
    INTERVENSI = "intervensi"
    BINA_LANJUT = "bina_lanjut"


class DischargeReason(StrEnum):
    """Why a client left the programme."""

    COMPLETED = "completed"
    DROPPED_OUT = "dropped_out"
    REFERRED_OUT = "referred_out"
    MOVED = "moved"
    DIED = "died"


class FollowUpStatus(StrEnum):
    """A client's substance use at follow-up."""

    ABSTINENT = "abstinent"
    REDUCED_USE = "reduced_use"
    RELAPSED = "relapsed"
    UNREACHABLE = "unreachable"


class ClinicService(StrEnum):
    """Service a client is referred to.

    ``rawat_jalan``: outpatient rehabilitation. ``rawat_inap``: inpatient (residential)
    rehabilitation. ``medis``: medical care. ``psikiatri``: psychiatric care. ``sosial``:
    social rehabilitation.
    """

    RAWAT_JALAN = "rawat_jalan"
    RAWAT_INAP = "rawat_inap"
    MEDIS = "medis"
    PSIKIATRI = "psikiatri"
    SOSIAL = "sosial"


class ReferralReason(StrEnum):
    """Why a client is referred to a clinic."""

    HIGH_RISK = "high_risk"
    INJECTING = "injecting"
    MEDICAL = "medical"
    PSYCHIATRIC = "psychiatric"
    NO_PROGRESS = "no_progress"
    CLIENT_REQUEST = "client_request"


class Urgency(StrEnum):
    """How soon a clinic should answer a referral."""

    ROUTINE = "routine"
    URGENT = "urgent"


class EscalationReason(StrEnum):
    """Why a referral was escalated: the clinic did not answer in time, or declined."""

    NO_RESPONSE = "no_response"
    DECLINED = "declined"


class ReferralOutcome(StrEnum):
    """How a referral ended."""

    COMPLETED = "completed"
    DROPPED_OUT = "dropped_out"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    """Why a referral was cancelled before the clinic finished with it."""

    CLIENT_REQUEST = "client_request"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CLIENT_MOVED = "client_moved"
    CLIENT_DIED = "client_died"
    ENTERED_IN_ERROR = "entered_in_error"


class DeclineReason(StrEnum):
    """Why a clinic declined a referral."""

    NO_CAPACITY = "no_capacity"
    NOT_INDICATED = "not_indicated"
    OUT_OF_AREA = "out_of_area"


class TreatmentOutcome(StrEnum):
    """How treatment at a clinic ended."""

    COMPLETED = "completed"
    DROPPED_OUT = "dropped_out"


class AgentDeactivationReason(StrEnum):
    """Why a recovery agent stopped working for a unit."""

    RESIGNED = "resigned"
    MOVED = "moved"
    INACTIVE = "inactive"
    MISCONDUCT = "misconduct"
    DIED = "died"
    OTHER = "other"


class UnitPhase(StrEnum):
    """Maturity phase of an IBM unit, from newest to strongest.

    ``rintisan``: pioneering (just set up). ``tumbuh``: growing. ``berkembang``: developing.
    ``tangguh``: resilient. ``prima``: excellent (fully self-reliant).
    """

    RINTISAN = "rintisan"
    TUMBUH = "tumbuh"
    BERKEMBANG = "berkembang"
    TANGGUH = "tangguh"
    PRIMA = "prima"


class Indicator(StrEnum):
    """Indicators a regency reports each month (``qol_improved``: clients whose exit mean
    WHOQOL score beat their baseline)."""

    OUTREACH_PEOPLE_REACHED = "outreach_people_reached"
    CLIENTS_REGISTERED = "clients_registered"
    CLIENTS_SCREENED = "clients_screened"
    SCREENED_LOW = "screened_low"
    SCREENED_MODERATE = "screened_moderate"
    SCREENED_HIGH = "screened_high"
    CLIENTS_ENROLLED = "clients_enrolled"
    CLIENTS_ACTIVE = "clients_active"
    SESSIONS_HELD = "sessions_held"
    SESSIONS_ATTENDED = "sessions_attended"
    REFERRALS_MADE = "referrals_made"
    REFERRALS_ACCEPTED = "referrals_accepted"
    REFERRALS_COMPLETED = "referrals_completed"
    REFERRALS_OVERDUE = "referrals_overdue"
    BACK_REFERRALS = "back_referrals"
    PROGRAMMES_COMPLETED = "programmes_completed"
    DROPOUTS = "dropouts"
    FOLLOW_UPS_RELAPSED = "follow_ups_relapsed"
    QOL_IMPROVED = "qol_improved"
