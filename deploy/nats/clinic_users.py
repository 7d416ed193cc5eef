#!/usr/bin/env python3
"""Print the NATS accounts of a regency: Pulih's services in one, the clinics in another.

    python deploy/nats/clinic_users.py --regency 3301 klinik-pratama-demo rsud-cilacap > users.conf

Two accounts, so that what a clinic may send is limited apart from what Pulih's services send:

- ``PULIH`` (:data:`SERVICE_ACCOUNT`): the user ``pulih`` of every service, and JetStream with the
  regency's stream ``IBM_<regency>``. The leaf link to the national hub binds neither: it binds
  a third account, ``LINK``, that imports only the regency's aggregates (``pulih federation render``).
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

The accounts themselves are built by ``pulih.kit.federation.accounts`` (install Pulih's kit,
``pip install ./contracts ./kit``), which also renders them, with the ``LINK`` account of the
national link, for every regency of ``deploy/federation.toml`` (``pulih federation render``,
deploy/README.md "Federation"). This script prints the block for one regency by hand.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from pulih.kit.federation.accounts import (
    CLINIC_MAX_PAYLOAD,
    JS_INFO,
    PULL_WAIT_LIMIT,
    accounts_block,
    answer_subjects,
    clinic_permissions,
    consumer_api,
    consumer_name,
    inbox_prefix,
    referral_filter,
)
from pulih.kit.federation.names import CLINIC_ACCOUNT, SERVICE_ACCOUNT, SERVICE_USER

__all__ = [
    "CLINIC_ACCOUNT",
    "CLINIC_MAX_PAYLOAD",
    "JS_INFO",
    "PULL_WAIT_LIMIT",
    "SERVICE_ACCOUNT",
    "SERVICE_USER",
    "accounts_block",
    "answer_subjects",
    "clinic_permissions",
    "consumer_api",
    "consumer_name",
    "inbox_prefix",
    "referral_filter",
]


def _password(variable: str, who: str) -> str:
    value = os.environ.get(variable)
    if value:
        return value
    value = secrets.token_urlsafe(24)
    print(f"# generated password for {who}: {value}", file=sys.stderr)
    return value


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
