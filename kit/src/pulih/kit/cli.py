"""The ``pulih`` command: ``up`` (a local regency), ``events tail``, ``token``.

``pulih up`` stays a light process for as long as the regency runs: it is parsed and started
before anything else is imported (the other commands' modules load the web and database stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from importlib.metadata import entry_points
from uuid import UUID

from pulih.kit.settings import Settings


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def _up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument("--regency", help="Kemendagri regency code without dots (default 3301 or PULIH_REGENCY)")
    up.add_argument("--data-dir", help="where stores and NATS keep data (default .pulih or PULIH_DATA_DIR)")
    up.add_argument("--nats-port", type=int, default=None, help="embedded NATS port (default 14222)")


UP_HELP = "start a whole local regency: NATS and every service"


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings, with ``--regency`` and ``--data-dir`` applied; ``None`` (and why, on stderr)
    when they are invalid."""
    if getattr(args, "regency", None):
        os.environ["PULIH_REGENCY"] = args.regency
    if getattr(args, "data_dir", None):
        os.environ["PULIH_DATA_DIR"] = args.data_dir
    try:
        return Settings()
    except ValueError as exc:
        print(f"pulih: invalid settings: {exc}", file=sys.stderr)
        return None


def _up(argv: list[str]) -> int:
    """``pulih up``, with only what the supervisor needs imported."""
    from pulih.kit.local_regency import default_nats_port, run_regency

    parser = argparse.ArgumentParser(prog="pulih up", description=UP_HELP)
    _up_arguments(parser)
    args = parser.parse_args(argv)
    settings = _settings(args)
    if settings is None:
        return 2
    return asyncio.run(run_regency(settings, nats_port=args.nats_port or default_nats_port()))


def _parser() -> argparse.ArgumentParser:
    from pulih.kit import backup, dlq
    from pulih.kit.auth import Role
    from pulih.kit.federation import cli as federation
    from pulih.kit.simulate import cli as simulate

    parser = argparse.ArgumentParser(prog="pulih", description="Pulih: community-based recovery (IBM)")
    sub = parser.add_subparsers(dest="command", required=True)

    _up_arguments(sub.add_parser("up", help=UP_HELP))

    events = sub.add_parser("events", help="look at the regency's events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail = events_sub.add_parser("tail", help="print events as they arrive (or the last N), one line each")
    tail.add_argument("--all", action="store_true", help="start from the first event in the stream")
    tail.add_argument("--subject", help="only this subject (wildcards allowed)")
    tail.add_argument("--limit", type=int, help="stop after this many events")
    tail.add_argument(
        "--last",
        type=_positive,
        metavar="N",
        help="print the last N events in the stream, newest last, and stop",
    )

    backup.add_commands(sub)
    dlq.add_parser(sub)
    federation.add_parser(sub)
    simulate.add_parser(sub)
    # Commands of installed services (``pulih reporting …``): each entry point adds its parsers,
    # which name the function to run as ``pulih_command(settings, args) -> exit code``.
    for command in entry_points(group="pulih.commands"):
        command.load()(sub)

    token = sub.add_parser("token", help="print a development token for a role")
    token.add_argument("role", choices=[r.value for r in Role])
    token.add_argument("--unit", type=UUID, help="the agent's unit_id")
    token.add_argument("--clinic", help="the clinic's id")
    token.add_argument("--sub", help="who the token is for (default: <role>-dev)")
    token.add_argument(
        "--scope",
        help="the regency code the token is for, or 'national' for the national view "
        "(default: PULIH_REGENCY; national where PULIH_REPORTING_MODE=national)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["up"]:
        return _up(arguments[1:])
    from pulih.kit import backup, dlq
    from pulih.kit.auth import NATIONAL_SCOPE, issue_token, scope_of
    from pulih.kit.tail import regency_nats_url, run_tail

    parser = _parser()
    args = parser.parse_args(arguments)
    if getattr(args, "last", None) and (args.all or args.limit is not None):
        parser.error("--last N prints the last N events and stops: it goes with neither --all nor --limit")
    settings = _settings(args)
    if settings is None:
        return 2

    if hasattr(args, "pulih_command"):
        return int(args.pulih_command(settings, args))
    if args.command == "dlq":
        return dlq.run(settings, args)
    if args.command in backup.COMMANDS:
        return backup.run_command(args, settings)
    if args.command == "up":  # after other options (``pulih --x up`` has none today)
        return _up(arguments[arguments.index("up") + 1 :])
    if args.command == "events":
        return run_tail(
            regency_nats_url(settings),
            settings.regency,
            replay_all=args.all,
            subject=args.subject,
            limit=args.limit,
            last=args.last,
        )
    if args.command == "token":
        if settings.env == "production":
            print(
                "pulih: `pulih token` makes development tokens; in production the identity provider "
                f"({settings.oidc_issuer}) issues them",
                file=sys.stderr,
            )
            return 2
        if args.role == "agent" and args.unit is None:
            print("pulih: an agent token needs --unit <unit_id>", file=sys.stderr)
            return 2
        if args.role == "clinic" and not args.clinic:
            print("pulih: a clinic token needs --clinic <clinic_id>", file=sys.stderr)
            return 2
        scope = args.scope or scope_of(settings)
        if scope != NATIONAL_SCOPE and not re.fullmatch(r"[0-9]{4}", scope):
            print(
                f"pulih: --scope is a 4-digit regency code or {NATIONAL_SCOPE}, not {scope!r}",
                file=sys.stderr,
            )
            return 2
        from pulih.kit.dev_keys import existing_local_key

        print(
            issue_token(  # with `pulih up`'s local key if it made one, else the secret's (deprecated)
                existing_local_key(settings.data_dir) or settings.jwt_secret.get_secret_value(),
                sub=args.sub or f"{args.role}-dev",
                role=args.role,
                regency=scope,
                unit_id=args.unit,
                clinic_id=args.clinic,
            )
        )
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
