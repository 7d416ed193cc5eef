"""The configs a local federation runs from: the federation list narrowed to the regencies that run
here with the hub on the loopback address, and every server's files rendered from it
(:mod:`pulih.kit.federation.render`) as a real deployment renders them, without TLS."""

from __future__ import annotations

import json
from pathlib import Path

from pulih.kit.federation import render
from pulih.kit.federation.layout import Layout, RegencyPlace
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation, Hub, load_federation


def local_federation(listed: Federation, lay: Layout) -> Federation:
    """The federation this machine runs: the regencies of ``lay`` (as the list declares them, or
    by code), the hub on the loopback address and ``lay``'s ports."""
    return listed.with_regencies([p.code for p in lay.regencies]).with_hub(
        Hub(host="127.0.0.1", client_port=lay.hub_client_port, leaf_port=lay.hub_leaf_port)
    )


def listed_federation(federation_file: Path | None) -> tuple[Federation, str]:
    """The federation list (or an empty one) and a word on where it came from."""
    if federation_file is None:
        return Federation(), "no federation list"
    return load_federation(federation_file), str(federation_file)


def federation_toml(fed: Federation) -> str:
    """``fed`` as a federation list (what the national reporting reads as ``PULIH_FEDERATION_FILE``)."""
    hub = fed.hub
    lines = [
        "# The local federation `pulih federation up` runs (written by it; edit deploy/federation.toml)",
        "[hub]",
        f'host = "{hub.host}"',
        f"client_port = {hub.client_port}",
        f"leaf_port = {hub.leaf_port}",
    ]
    for r in fed.regencies:
        clinics = ", ".join(json.dumps(c) for c in r.clinics)
        lines += [
            "",
            "[[regencies]]",
            f'code = "{r.code}"',
            f"name = {json.dumps(r.name)}",
            f"clinics = [{clinics}]",
        ]
    return "\n".join(lines) + "\n"


def render_hub_files(fed: Federation, secrets: Secrets, lay: Layout) -> dict[str, str]:
    """The hub's config on this machine."""
    # a development machine: no TLS on the loopback address, JetStream's default fsync interval
    return render.render_hub(
        fed, secrets, listen_host="127.0.0.1", store_dir=lay.hub_dir / "jetstream", sync_always=False
    )


def render_regency_files(fed: Federation, secrets: Secrets, place: RegencyPlace) -> dict[str, str]:
    """A regency server's config files on this machine."""
    return render.render_regency(
        fed,
        place.code,
        secrets,
        listen_host="127.0.0.1",
        client_port=place.nats_port,
        store_dir=place.nats_dir / "jetstream",
        sync_always=False,
    )
