"""What ``pulih federation up`` says: a line per step, and once everything answers, every address,
the development tokens, the logs and what to do next."""

from __future__ import annotations

from pathlib import Path

from pulih.kit.federation import names
from pulih.kit.federation.layout import Layout
from pulih.kit.federation.topology import Federation


def say(text: str) -> None:
    """One line of ``up``'s progress."""
    print(f"[federation] {text}", flush=True)


def federation_words(reason: str) -> str:
    """A supervisor's reason for stopping (worded for a regency) worded for the federation."""
    return reason.replace("stopping the regency", "stopping the federation")


def print_up(
    fed: Federation, lay: Layout, tokens: dict[str, str], tokens_file: Path, *, manual_clock: bool
) -> None:
    """The federation is up: the hub, the national reporting, each regency's addresses, the
    tokens, the logs, and the commands that act on it."""
    print(
        f"\nPulih federation is up: a national hub and {len(lay.regencies)} regencies "
        f"(data in {lay.data_dir})."
    )
    print(
        f"\n  hub        NATS nats://127.0.0.1:{lay.hub_client_port}   "
        f"(JetStream domain national; leaf port {lay.hub_leaf_port})"
    )
    print(
        f"             user {names.HUB_ADMIN_USER}, its URL with the password: HUB_NATS_URL in {tokens_file}"
    )
    print(
        f"  national   reporting {lay.national_url}   (the national dashboard: sign in with NATIONAL_TOKEN)"
    )
    for place in lay.regencies:
        regency = fed.regency(place.code)
        print(
            f"\n  r{place.code}      {regency.name} ({regency.province_name}): "
            f"NATS nats://127.0.0.1:{place.nats_port} (domain r{place.code})"
        )
        for name in place.ports:
            print(f"             {name:<10} {place.url(name)}")
    print(
        f"\nDevelopment tokens (also in {tokens_file}; each regency's, named as `pulih up` names "
        "them, in <data dir>/r<code>/tokens.env):"
    )
    for key, token in tokens.items():
        print(f"  {key}={token}")
    print(
        f"\nLogs: {lay.hub_dir / 'nats-server.log'}, {lay.national_dir / 'logs'}/, and per regency "
        f"{lay.data_dir}/r<code>/logs/ and r<code>/nats/nats-server.log; pids in {lay.data_dir / 'pids'}. "
        "Here: the services' warnings and errors (their logs have every line)."
    )
    print(
        "Cut a regency's link with `pulih federation link-down <code>` (`link-up <code>` restores it); "
        "stop the hub with `pulih federation hub-down` (`hub-up`)."
    )
    if manual_clock:
        print(
            "Fill the regencies with a few months of work, until the national dashboard shows them: "
            "`pulih federation demo` in another terminal."
        )
    else:
        print(
            "This federation runs on the system clock, so `pulih federation demo` cannot close months in "
            "it: for the demo, stop it (Ctrl-C) and start it with `PULIH_CLOCK=manual pulih federation up`."
        )
    print("Ctrl-C stops everything; the data stays for the next `pulih federation up`.\n", flush=True)
