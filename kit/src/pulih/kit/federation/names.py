"""The names of the federation: JetStream domains, streams, accounts, users and subjects.

Pure functions, no I/O. A regency is known by its four-digit Kemendagri code (``3301``, Cilacap);
its province is the first two digits (``33``, Jawa Tengah). Everything the regencies and the
national hub agree on is spelled here once::

    regency 3301:  JetStream domain r3301, stream IBM_3301, accounts PULIH, CLINICS, LINK
    hub:           JetStream domain national, streams NATIONAL and NATIONAL_DLQ,
                   account NATIONAL (users hub, the admin, and national, the national reporting),
                   account R3301 (user r3301: 3301's leaf link), one such account per regency
"""

from __future__ import annotations

import re

from pulih.contracts.subjects import stream_name

REGENCY_CODE = re.compile(r"^[0-9]{4}$")
CLINIC_ID = re.compile(r"^[a-z0-9-]{1,64}$")

HUB_DOMAIN = "national"
"""The JetStream domain of the national hub."""
NATIONAL_STREAM = "NATIONAL"
"""The hub's stream of every regency's aggregates: sources only, no subjects of its own."""
NATIONAL_DLQ_STREAM = "NATIONAL_DLQ"
"""The hub's stream of the national reporting's dead letters."""
NATIONAL_DLQ_SUBJECTS = "national.dlq.>"
NATIONAL_DLQ_REPORTING = "national.dlq.reporting"
"""Where the national reporting publishes an aggregate it could not apply."""
NATIONAL_DURABLE = "reporting-national"
"""The national reporting's durable pull consumer on :data:`NATIONAL_STREAM`."""
NATIONAL_FILTER = "ibm.*.reporting.aggregate_reported"
"""What :data:`NATIONAL_STREAM` holds, and the national consumer's filter."""

SERVICE_ACCOUNT = "PULIH"
"""On a regency's server: the account of Pulih's services and of the stream ``IBM_<code>``."""
CLINIC_ACCOUNT = "CLINICS"
"""On a regency's server: the account of the clinics' users."""
LINK_ACCOUNT = "LINK"
"""On a regency's server: the account the leaf link to the hub binds; it holds only imports of
what the hub may ask for (a consumer on the regency's aggregates) and receive (their deliveries)."""
SERVICE_USER = "pulih"
"""The user of every Pulih service on a regency's server."""

HUB_ACCOUNT = "NATIONAL"
"""On the hub: the account with JetStream and the national streams; its users are
:data:`HUB_ADMIN_USER` and :data:`NATIONAL_USER`. Each regency's leaf link logs in to an account
of its own (:func:`hub_link_account`), from which ``NATIONAL`` imports that regency's part."""
HUB_ADMIN_USER = "hub"
"""The hub's administrator: declares the national streams."""
NATIONAL_USER = "national"
"""The national reporting: reads :data:`NATIONAL_STREAM` through its own durable only."""
CLUSTER_NAME = "pulih-national"
"""The name of the hub's 3-node cluster."""

PROVINCES: dict[str, str] = {
    "11": "Aceh",
    "12": "Sumatera Utara",
    "13": "Sumatera Barat",
    "14": "Riau",
    "15": "Jambi",
    "16": "Sumatera Selatan",
    "17": "Bengkulu",
    "18": "Lampung",
    "19": "Kepulauan Bangka Belitung",
    "21": "Kepulauan Riau",
    "31": "DKI Jakarta",
    "32": "Jawa Barat",
    "33": "Jawa Tengah",
    "34": "DI Yogyakarta",
    "35": "Jawa Timur",
    "36": "Banten",
    "51": "Bali",
    "52": "Nusa Tenggara Barat",
    "53": "Nusa Tenggara Timur",
    "61": "Kalimantan Barat",
    "62": "Kalimantan Tengah",
    "63": "Kalimantan Selatan",
    "64": "Kalimantan Timur",
    "65": "Kalimantan Utara",
    "71": "Sulawesi Utara",
    "72": "Sulawesi Tengah",
    "73": "Sulawesi Selatan",
    "74": "Sulawesi Tenggara",
    "75": "Gorontalo",
    "76": "Sulawesi Barat",
    "81": "Maluku",
    "82": "Maluku Utara",
    "91": "Papua",
    "92": "Papua Barat",
    "93": "Papua Selatan",
    "94": "Papua Tengah",
    "95": "Papua Pegunungan",
    "96": "Papua Barat Daya",
}
"""The 38 provinces of Indonesia by their Kemendagri code (Kepmendagri 100.1.1-6117/2022)."""


def check_code(code: str) -> str:
    """``code`` if it is a regency's four-digit code in a known province, else ``ValueError``."""
    if not isinstance(code, str) or not REGENCY_CODE.match(code):
        raise ValueError(f"a regency code is four digits (Kemendagri), not {code!r}")
    if code[:2] not in PROVINCES:
        raise ValueError(f"regency {code}: no province has the code {code[:2]}")
    return code


def province_of(code: str) -> str:
    """The province code of a regency: the first two digits of its code."""
    return check_code(code)[:2]


def province_name(province: str) -> str:
    """The name of a province by its two-digit code (``KeyError`` for an unknown one)."""
    return PROVINCES[province]


def domain(code: str) -> str:
    """The JetStream domain of a regency's server, e.g. ``r3301``."""
    return f"r{check_code(code)}"


def regency_stream(code: str) -> str:
    """The regency's stream, e.g. ``IBM_3301`` (the name ``pulih.contracts`` gives it)."""
    return stream_name(check_code(code))


def aggregate_subject(code: str) -> str:
    """The subject of a regency's monthly aggregates, the only one that crosses the link."""
    return f"ibm.{check_code(code)}.reporting.aggregate_reported"


def link_user(code: str) -> str:
    """The hub's user a regency's leaf link logs in as, e.g. ``r3301``."""
    return domain(code)


def hub_link_account(code: str) -> str:
    """The hub's account of regency ``code``'s leaf link, e.g. ``R3301``: its one user is
    :func:`link_user`; no JetStream; it exports to :data:`HUB_ACCOUNT` only what the source of the
    regency's aggregates needs."""
    return f"R{check_code(code)}"


def js_api(code: str) -> str:
    """The JetStream API prefix of a regency's domain as the hub sees it, e.g. ``$JS.r3301.API``."""
    return f"$JS.{domain(code)}.API"


def deliver_prefix(code: str) -> str:
    """Where the hub's source of a regency's aggregates has them delivered, e.g.
    ``national.deliver.r3301``; the regency exports ``<prefix>.>`` to its link."""
    return f"national.deliver.{domain(code)}"


def source_consumer_create(code: str, *, domain_prefix: bool) -> str:
    """The consumer-create API subject of the hub's source on the regency's aggregates (any
    consumer name, the filter pinned to the aggregates). ``domain_prefix`` gives it as the hub
    sends it (``$JS.r3301.API…``), else as the regency's own JetStream answers it (``$JS.API…``)."""
    prefix = js_api(code) if domain_prefix else "$JS.API"
    return f"{prefix}.CONSUMER.CREATE.{regency_stream(code)}.*.{aggregate_subject(code)}"


def flow_control(code: str) -> str:
    """The flow-control subjects of a source consumer on the regency's stream."""
    return f"$JS.FC.{regency_stream(code)}.>"


def national_api() -> dict[str, str]:
    """The JetStream API subjects the national reporting's durable needs on :data:`NATIONAL_STREAM`:
    create it (filter pinned, or the legacy durable form nats-py uses without a name), inspect
    it, pull from it, acknowledge, and the stream's info."""
    stream, durable = NATIONAL_STREAM, NATIONAL_DURABLE
    return {
        "create": f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.{NATIONAL_FILTER}",
        "durable_create": f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        "info": f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        "next": f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        "ack": f"$JS.ACK.{stream}.{durable}.>",
        "stream_info": f"$JS.API.STREAM.INFO.{stream}",
    }


def check_clinic(clinic_id: str) -> str:
    """``clinic_id`` if it is a slug of ``[a-z0-9-]`` (at most 64), else ``ValueError``."""
    if not isinstance(clinic_id, str) or not CLINIC_ID.match(clinic_id):
        raise ValueError(f"a clinic id is a slug of [a-z0-9-] (at most 64), not {clinic_id!r}")
    return clinic_id
