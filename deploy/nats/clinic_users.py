#!/usr/bin/env python3
"""Print the NATS accounts of a regency: Pulih's services in one, the clinics in another.

    python deploy/nats/clinic_users.py --regency 3301 klinik-pratama-demo rsud-cilacap > users.conf

Two accounts, so that what a clinic may send is limited apart from what Pulih's services send:

- ``PULIH`` (:data:`SERVICE_ACCOUNT`): the user ``pulih`` of every service, and JetStream with the
  regency's stream ``IBM_<regency>``. A leaf link to the national hub must bind this account
  (``account: "PULIH"`` in its ``remotes`` entry), or it would carry nothing of the regency.
- ``CLINICS`` (:data:`CLINIC_ACCOUNT`): one user per clinic, and the account's limits: no message
  from a clinic may exceed :data:`CLINIC_MAX_PAYLOAD` bytes (``--clinic-max-payload``). The server
  refuses a bigger one (``-ERR 'Maximum Payload Violation'``) and closes that connection before
  anything is stored, whatever the server-wide ``max_payload`` allows Pulih's services.

``PULIH`` exports to ``CLINICS``, and ``CLINICS`` imports, exactly what clinics need of the
stream; on top of that each clinic's user may only:

- publish its answers, ``ibm.<regency>.clinic.<clinic_id>.>`` (into the stream, with its ack);
- create, inspect and pull from its OWN durable pull consumer ``clinic-<clinic_id>`` on the
  regency's stream, whose filter is pinned to the events addressed to it,
  ``ibm.<regency>.referral.*.<clinic_id>``: its referrals, their escalation, cancellation and
  closing, and ``AnswerRejected`` when one of its answers was refused (since nats-server 2.9
  the consumer-create API subject carries the filter subject, so the permission pins it);
- acknowledge that consumer's messages;
- receive replies on its own inbox prefix ``_INBOX_<clinic_id>.>``. A shared ``_INBOX.>`` would
  let one clinic subscribe to the replies, and so the referrals, pulled by another; each clinic
  therefore connects with ``inbox_prefix="_INBOX_<clinic_id>"``.

Passwords come from the environment (``PULIH_NATS_SERVICE_PASSWORD``,
``PULIH_NATS_CLINIC_PASSWORD_<CLINIC_ID>`` with ``-`` as ``_``) or are generated and printed to
stderr once; in production store bcrypt hashes (``nats server passwd``) instead of clear text.
No Pulih import: operators run it with any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys

CLINIC_ID = re.compile(r"^[a-z0-9-]{1,64}$")
REGENCY = re.compile(r"^[0-9]{4}$")
SERVICE_USER = "pulih"
SERVICE_ACCOUNT = "PULIH"
"""The account of Pulih's services and of the regency's stream."""
CLINIC_ACCOUNT = "CLINICS"
"""The account of the clinics' users."""
CLINIC_MAX_PAYLOAD = 16 * 1024
"""The largest message a clinic may send, in bytes. An answer is well under 1 KB; 16 KiB leaves
room for optional fields yet keeps a dead letter quoting a clinic's message (even one escaped
character by character) far below the server-wide ``max_payload``."""
JS_INFO = "$JS.API.INFO"
PULL_WAIT_LIMIT = "5m"
"""How long a clinic's pull request (``fetch`` with a timeout) may wait for messages across the
two accounts; a longer one stops receiving after this."""


def consumer_name(clinic_id: str) -> str:
    """The durable consumer a clinic owns on its regency's stream."""
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
    if not CLINIC_ID.match(clinic_id):
        raise ValueError(f"clinic id must be [a-z0-9-]{{1,64}}, not {clinic_id!r}")
    if not REGENCY.match(regency):
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


def _exports_and_imports(regency: str, clinic_ids: list[str]) -> tuple[list[object], list[object]]:
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


def _password(variable: str, who: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    value = secrets.token_urlsafe(24)
    print(f"# generated password for {who}: {value}", file=sys.stderr)
    return value


def _conf(value: object, indent: int = 0) -> str:
    """NATS configuration syntax (JSON-like; strings quoted, so `$` and `*` stay literal)."""
    pad = "  " * indent
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {k}: {_conf(v, indent + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, list):
        inner = "".join(f"{pad}  {_conf(v, indent + 1)}\n" for v in value)
        return "[\n" + inner + pad + "]"
    return json.dumps(value)


def accounts_block(
    regency: str,
    service_password: str,
    clinics: dict[str, str],
    clinic_max_payload: int = CLINIC_MAX_PAYLOAD,
) -> str:
    """The ``accounts`` block: Pulih's services with the stream, and each clinic's user in the
    clinics' account with its permissions and the account's message size limit."""
    if clinic_max_payload < 1024:
        raise ValueError("a clinic's max payload below 1 KiB would refuse ordinary answers")
    exports, imports = _exports_and_imports(regency, list(clinics))
    clinic_users = [
        {
            "user": consumer_name(clinic_id),
            "password": password,
            "permissions": clinic_permissions(regency, clinic_id),
        }
        for clinic_id, password in clinics.items()
    ]
    accounts = {
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
    return "accounts " + _conf(accounts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clinic_ids", nargs="*", help="clinic slugs, e.g. klinik-pratama-demo")
    parser.add_argument("--regency", default=os.environ.get("PULIH_REGENCY", "3301"))
    parser.add_argument(
        "--clinic-max-payload",
        type=int,
        default=CLINIC_MAX_PAYLOAD,
        help=f"largest message a clinic may send, in bytes (default {CLINIC_MAX_PAYLOAD})",
    )
    args = parser.parse_args(argv)
    clinics = {
        c: _password(f"PULIH_NATS_CLINIC_PASSWORD_{c.upper().replace('-', '_')}", consumer_name(c))
        for c in args.clinic_ids
    }
    service = _password("PULIH_NATS_SERVICE_PASSWORD", SERVICE_USER)
    sys.stdout.write(accounts_block(args.regency, service, clinics, args.clinic_max_payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
