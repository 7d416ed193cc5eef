#!/usr/bin/env python3
"""Print the NATS ``authorization`` block of a regency: Pulih's services and one user per clinic.

    python deploy/nats/clinic_users.py --regency 3301 klinik-pratama-demo rsud-cilacap > users.conf

Each clinic may only:

- publish its answers, ``ibm.*.clinic.<clinic_id>.>``;
- create, inspect and pull from its OWN durable pull consumer ``clinic-<clinic_id>`` on the
  regency's stream, whose filter is pinned to the referrals addressed to it (since nats-server
  2.9 the consumer-create API subject carries the filter subject, so the permission pins it);
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


def consumer_name(clinic_id: str) -> str:
    """The durable consumer a clinic owns on its regency's stream."""
    return f"clinic-{clinic_id}"


def inbox_prefix(clinic_id: str) -> str:
    """The inbox prefix a clinic connects with (``inbox_prefix=`` in nats-py)."""
    return f"_INBOX_{clinic_id}"


def referral_filter(regency: str, clinic_id: str) -> str:
    """The referral events addressed to one clinic."""
    return f"ibm.{regency}.referral.*.{clinic_id}"


def clinic_permissions(regency: str, clinic_id: str) -> dict[str, object]:
    """The publish/subscribe allow lists of one clinic's user."""
    if not CLINIC_ID.match(clinic_id):
        raise ValueError(f"clinic id must be [a-z0-9-]{{1,64}}, not {clinic_id!r}")
    if not REGENCY.match(regency):
        raise ValueError(f"regency must be a 4-digit code, not {regency!r}")
    stream = f"IBM_{regency}"
    durable = consumer_name(clinic_id)
    return {
        "publish": {
            "allow": [
                f"ibm.*.clinic.{clinic_id}.>",
                "$JS.API.INFO",
                f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.{referral_filter(regency, clinic_id)}",
                f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(clinic_id)}.>"]},
    }


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


def authorization_block(regency: str, service_password: str, clinics: dict[str, str]) -> str:
    """The ``authorization`` block: Pulih's services (everything) and each clinic's user."""
    users: list[dict[str, object]] = [{"user": SERVICE_USER, "password": service_password}]
    for clinic_id, password in clinics.items():
        users.append(
            {
                "user": consumer_name(clinic_id),
                "password": password,
                "permissions": clinic_permissions(regency, clinic_id),
            }
        )
    return "authorization " + _conf({"users": users}) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clinic_ids", nargs="*", help="clinic slugs, e.g. klinik-pratama-demo")
    parser.add_argument("--regency", default=os.environ.get("PULIH_REGENCY", "3301"))
    args = parser.parse_args(argv)
    clinics = {
        c: _password(f"PULIH_NATS_CLINIC_PASSWORD_{c.upper().replace('-', '_')}", consumer_name(c))
        for c in args.clinic_ids
    }
    service = _password("PULIH_NATS_SERVICE_PASSWORD", SERVICE_USER)
    sys.stdout.write(authorization_block(args.regency, service, clinics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
