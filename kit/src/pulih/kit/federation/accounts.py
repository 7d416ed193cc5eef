"""The NATS accounts of a regency's server, and those of the national hub.

A regency's server has three accounts:

- ``PULIH`` (:data:`~pulih.kit.federation.names.SERVICE_ACCOUNT`): the user ``pulih`` of every
  service, and JetStream with the regency's stream ``IBM_<code>``.
- ``CLINICS``: one user per clinic, and the account's limit: no message from a clinic may exceed
  :data:`CLINIC_MAX_PAYLOAD` bytes; the server refuses a bigger one (``-ERR 'Maximum Payload
  Violation'``) and closes that connection before anything is stored. ``PULIH`` exports to
  ``CLINICS``, and ``CLINICS`` imports, exactly what clinics need of the stream; on top of that each
  clinic's user may only publish its answers, ``ibm.<code>.clinic.<clinic_id>.>``; create, inspect
  and pull from its OWN durable pull consumer ``clinic-<clinic_id>``, whose filter is pinned to the
  events addressed to it, ``ibm.<code>.referral.*.<clinic_id>`` (since nats-server 2.9 the
  consumer-create API subject carries the filter subject, so the permission pins it); acknowledge
  that consumer's messages; and receive replies on its own inbox prefix ``_INBOX_<clinic_id>.>``
  (a shared ``_INBOX.>`` would let one clinic read the referrals pulled by another).
- ``LINK``: what the leaf link to the national hub binds. No JetStream and no users; it holds only
  imports from ``PULIH``: the consumer-create API pinned to the stream's aggregates
  (``$JS.API.CONSUMER.CREATE.IBM_<code>.*.ibm.<code>.reporting.aggregate_reported``, reached from the
  hub as ``$JS.r<code>.API…`` through an account mapping), the flow control of that consumer, and
  its deliveries on ``national.deliver.r<code>.>``. Whatever else the hub asks for, or publishes,
  has no importer in the regency: nothing answers, nothing is stored, nothing is delivered.

On the hub, each regency's link logs in as user ``r<code>`` of an account of its own, ``R<code>``
(:func:`~pulih.kit.federation.names.hub_link_account`): no JetStream, no other user. The account
boundary is the permission. ``R<code>`` exports to ``NATIONAL``, and ``NATIONAL`` imports, exactly
what the source of that regency's aggregates needs: the consumer-create request pinned to the
aggregates (``$JS.r<code>.API.CONSUMER.CREATE.IBM_<code>.*.ibm.<code>.reporting.aggregate_reported``)
and the flow control of ``IBM_<code>`` (services the hub sends to the link), and the deliveries on
``national.deliver.r<code>.>`` (a stream the link sends in). So a link can only offer into its own
account, only its own deliver prefix reaches ``NATIONAL``, and no regency sees another's interest: a
link that claims another regency's domain is asked for nothing, and what it sends stops at its
account. The link users carry no permissions: whatever they might publish or subscribe to besides
these subjects has no importer or exporter in any other account, so a permission list would only
repeat the exports (and would have to allow the ``_R_.`` replies of the service imports).
"""

from __future__ import annotations

import json

from pulih.kit.federation import names
from pulih.kit.federation.names import (
    CLINIC_ACCOUNT,
    LINK_ACCOUNT,
    SERVICE_ACCOUNT,
    SERVICE_USER,
    check_clinic,
    check_code,
)

CLINIC_MAX_PAYLOAD = 16 * 1024
"""The largest message a clinic may send, in bytes. An answer is well under 1 KB; 16 KiB leaves
room for optional fields yet keeps a dead letter quoting a clinic's message (even one escaped
character by character) far below the server-wide ``max_payload``."""
JS_INFO = "$JS.API.INFO"
PULL_WAIT_LIMIT = "5m"
"""How long a clinic's pull request (``fetch`` with a timeout) may wait for messages across the
two accounts; a longer one stops receiving after this."""


def consumer_name(clinic_id: str) -> str:
    """The durable consumer a clinic owns on its regency's stream (and its user's name)."""
    return f"clinic-{clinic_id}"


def inbox_prefix(clinic_id: str) -> str:
    """The inbox prefix a clinic connects with (``inbox_prefix=`` in nats-py)."""
    return f"_INBOX_{clinic_id}"


def referral_filter(regency: str, clinic_id: str) -> str:
    """The referral events addressed to one clinic, ``AnswerRejected`` included."""
    return f"ibm.{regency}.referral.*.{clinic_id}"


def answer_subjects(regency: str, clinic_id: str) -> str:
    """Where one clinic publishes its answers."""
    return f"ibm.{regency}.clinic.{clinic_id}.>"


def _check(regency: str, clinic_id: str) -> None:
    check_clinic(clinic_id)
    if not names.REGENCY_CODE.match(regency):
        raise ValueError(f"regency must be a 4-digit code, not {regency!r}")


def consumer_api(regency: str, clinic_id: str) -> dict[str, str]:
    """The JetStream API subjects of one clinic's own consumer (create pinned to its filter,
    info, next messages, acknowledgements)."""
    _check(regency, clinic_id)
    stream, durable = f"IBM_{regency}", consumer_name(clinic_id)
    return {
        "create": f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.{referral_filter(regency, clinic_id)}",
        "info": f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        "next": f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        "ack": f"$JS.ACK.{stream}.{durable}.>",
    }


def clinic_permissions(regency: str, clinic_id: str) -> dict[str, object]:
    """The publish/subscribe allow lists of one clinic's user."""
    api = consumer_api(regency, clinic_id)
    return {
        "publish": {
            "allow": [
                answer_subjects(regency, clinic_id),
                JS_INFO,
                api["create"],
                api["info"],
                api["next"],
                api["ack"],
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(clinic_id)}.>"]},
    }


def _clinic_exports_and_imports(regency: str, clinic_ids: list[str]) -> tuple[list[object], list[object]]:
    """What ``PULIH`` lends ``CLINICS``: the answer subjects (as a service, so a JetStream publish
    gets its ack back), ``$JS.API.INFO`` (without that import the server answers a clinic's
    JetStream requests itself, "JetStream not enabled for account") and each clinic's consumer
    API; nothing else of the stream."""
    to_clinics = [CLINIC_ACCOUNT]
    exports: list[object] = []
    imports: list[object] = []
    for subject in (f"ibm.{regency}.clinic.*.>", JS_INFO):
        exports.append({"service": subject, "accounts": to_clinics})
        imports.append({"service": {"account": SERVICE_ACCOUNT, "subject": subject}})
    for clinic_id in clinic_ids:
        for kind, subject in consumer_api(regency, clinic_id).items():
            export: dict[str, object] = {"service": subject, "accounts": to_clinics}
            if kind == "next":  # a pull request is answered with many messages
                export.update(response_type="stream", response_threshold=PULL_WAIT_LIMIT)
            exports.append(export)
            imports.append({"service": {"account": SERVICE_ACCOUNT, "subject": subject}})
    return exports, imports


def link_exports(code: str) -> list[object]:
    """What ``PULIH`` lends ``LINK``: a consumer on the aggregates only, its flow control, its
    deliveries."""
    to_link = [LINK_ACCOUNT]
    return [
        {"service": names.source_consumer_create(code, domain_prefix=False), "accounts": to_link},
        {"service": names.flow_control(code), "accounts": to_link},
        {"stream": f"{names.deliver_prefix(code)}.>", "accounts": to_link},
    ]


def link_account(code: str) -> dict[str, object]:
    """The ``LINK`` account: the mapping of the hub's domain-prefixed request onto the regency's
    own API, and the imports of :func:`link_exports`; no users, no JetStream."""
    return {
        "mappings": {
            names.source_consumer_create(code, domain_prefix=True): names.source_consumer_create(
                code, domain_prefix=False
            ).replace(".*.", ".{{wildcard(1)}}.", 1)
        },
        "imports": [
            {
                "service": {
                    "account": SERVICE_ACCOUNT,
                    "subject": names.source_consumer_create(code, domain_prefix=False),
                }
            },
            {"service": {"account": SERVICE_ACCOUNT, "subject": names.flow_control(code)}},
            {"stream": {"account": SERVICE_ACCOUNT, "subject": f"{names.deliver_prefix(code)}.>"}},
        ],
    }


def conf_value(value: object, indent: int = 0) -> str:
    """NATS configuration syntax (JSON-like; strings quoted, so ``$`` and ``*`` stay literal)."""
    pad = "  " * indent
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {json.dumps(k)}: {conf_value(v, indent + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, list):
        inner = "".join(f"{pad}  {conf_value(v, indent + 1)}\n" for v in value)
        return "[\n" + inner + pad + "]"
    return json.dumps(value)


def regency_accounts(
    code: str,
    service_password: str,
    clinics: dict[str, str],
    *,
    clinic_max_payload: int = CLINIC_MAX_PAYLOAD,
    link: bool = True,
) -> dict[str, object]:
    """The accounts of regency ``code``'s server: Pulih's services with the stream, each clinic's
    user (``clinics``: id → password), and, with ``link``, the ``LINK`` account for the hub."""
    if link:
        check_code(code)
    if clinic_max_payload < 1024:
        raise ValueError("a clinic's max payload below 1 KiB would refuse ordinary answers")
    exports, imports = _clinic_exports_and_imports(code, list(clinics))
    if link:
        exports += link_exports(code)
    clinic_users = [
        {
            "user": consumer_name(clinic_id),
            "password": password,
            "permissions": clinic_permissions(code, clinic_id),
        }
        for clinic_id, password in clinics.items()
    ]
    accounts: dict[str, object] = {
        SERVICE_ACCOUNT: {
            "jetstream": "enabled",
            "users": [{"user": SERVICE_USER, "password": service_password}],
            "exports": exports,
        },
        CLINIC_ACCOUNT: {
            "users": clinic_users,
            "imports": imports,
            "limits": {"max_payload": clinic_max_payload},
        },
    }
    if link:
        accounts[LINK_ACCOUNT] = link_account(code)
    return accounts


def accounts_block(
    regency: str,
    service_password: str,
    clinics: dict[str, str],
    clinic_max_payload: int = CLINIC_MAX_PAYLOAD,
    *,
    link: bool = False,
) -> str:
    """The ``accounts`` block of a regency's server (see :func:`regency_accounts`)."""
    accounts = regency_accounts(
        regency, service_password, clinics, clinic_max_payload=clinic_max_payload, link=link
    )
    return "accounts " + conf_value(accounts) + "\n"


def national_user_permissions() -> dict[str, object]:
    """What the national reporting may do on the hub: its own durable on ``NATIONAL`` (create,
    info, pull, acknowledge), the stream's info, publish its dead letters, and receive replies."""
    api = names.national_api()
    return {
        "publish": {
            "allow": [
                api["create"],
                api["durable_create"],
                api["info"],
                api["next"],
                api["ack"],
                api["stream_info"],
                names.NATIONAL_DLQ_REPORTING,
            ]
        },
        "subscribe": {"allow": ["_INBOX.>"]},
    }


def hub_link_account_config(code: str, password: str) -> dict[str, object]:
    """The hub's account ``R<code>`` of regency ``code``'s leaf link: its user ``r<code>``
    (``password``), and the exports to ``NATIONAL`` of what the source needs (no JetStream)."""
    to_national = [names.HUB_ACCOUNT]
    return {
        "users": [{"user": names.link_user(code), "password": password}],
        "exports": [
            {"service": names.source_consumer_create(code, domain_prefix=True), "accounts": to_national},
            {"service": names.flow_control(code), "accounts": to_national},
            {"stream": f"{names.deliver_prefix(code)}.>", "accounts": to_national},
        ],
    }


def national_imports(code: str) -> list[object]:
    """What ``NATIONAL`` imports from ``R<code>``: the exports of :func:`hub_link_account_config`."""
    account = names.hub_link_account(code)
    return [
        {"service": {"account": account, "subject": names.source_consumer_create(code, domain_prefix=True)}},
        {"service": {"account": account, "subject": names.flow_control(code)}},
        {"stream": {"account": account, "subject": f"{names.deliver_prefix(code)}.>"}},
    ]


def hub_accounts(admin_password: str, national_password: str, links: dict[str, str]) -> dict[str, object]:
    """The hub's accounts: ``NATIONAL`` (JetStream; its administrator and the national reporting;
    the imports of each regency's part), and one ``R<code>`` per regency with its link user
    (``links``: code → password)."""
    imports: list[object] = []
    for code in links:
        imports += national_imports(code)
    national: dict[str, object] = {
        "jetstream": "enabled",
        "users": [
            {"user": names.HUB_ADMIN_USER, "password": admin_password},
            {
                "user": names.NATIONAL_USER,
                "password": national_password,
                "permissions": national_user_permissions(),
            },
        ],
    }
    if imports:
        national["imports"] = imports
    accounts: dict[str, object] = {names.HUB_ACCOUNT: national}
    for code, password in links.items():
        accounts[names.hub_link_account(code)] = hub_link_account_config(code, password)
    return accounts
