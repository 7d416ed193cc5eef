"""The NATS server configs of the federation, rendered from the list (:mod:`.topology`) and the
passwords (:mod:`.secrets`). Pure: the same list and secrets give the same text, byte for byte.

A regency gets three files, in one directory:

- ``nats.conf``: the server (domain ``r<code>``, its store, client TLS when asked), including
- ``accounts.conf``: ``PULIH``, ``CLINICS`` and ``LINK`` (:mod:`.accounts`), and
- ``link.conf``: the leaf-node remote to the hub, bound to ``LINK``; rendered empty to cut the
  link (:func:`render_link` with ``up=False``, then ``nats-server --signal reload=<pid>``).

The hub gets ``hub.conf`` (one server), or ``hub-1.conf`` … ``hub-3.conf`` for a 3-node cluster:
domain ``national``, the leaf-node port (TLS with client certificates when asked), the account
``NATIONAL`` with the users ``hub`` and ``national``, and one account ``R<code>`` per regency whose
one user ``r<code>`` is that regency's leaf link (:func:`.accounts.hub_accounts`). Every node of a
cluster has the same accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pulih.kit.federation import names
from pulih.kit.federation.accounts import conf_value, hub_accounts, regency_accounts
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation, HubNode

MAX_PAYLOAD = "256KB"
"""Every server's largest message: events are about 1 KB, dead letters at most about 80 KB."""
ROUTE_USER = "route"
"""The user the hub's nodes authenticate their cluster routes with."""


@dataclass(frozen=True)
class TlsFiles:
    """A certificate, its key and the CA to check the other side with (PEM files)."""

    cert_file: str
    key_file: str
    ca_file: str
    verify: bool = False
    """On a listener: whether every client must show a certificate of ``ca_file``."""


@dataclass(frozen=True)
class RegencyTls:
    """TLS of a regency's server: towards its clients, and on its link to the hub."""

    clients: TlsFiles | None = None
    link: TlsFiles | None = None


DEPLOYED_REGENCY_TLS = RegencyTls(
    clients=TlsFiles("/etc/pulih/tls/server.pem", "/etc/pulih/tls/server-key.pem", "/etc/pulih/tls/ca.pem"),
    link=TlsFiles(
        "/etc/pulih/tls/leaf/client.pem", "/etc/pulih/tls/leaf/client-key.pem", "/etc/pulih/tls/leaf/ca.pem"
    ),
)
"""Where deploy/README.md ("TLS") installs a regency's certificates."""
DEPLOYED_HUB_TLS = TlsFiles(
    "/etc/pulih/tls/server.pem", "/etc/pulih/tls/server-key.pem", "/etc/pulih/tls/ca.pem", verify=True
)
"""Where deploy/README.md installs the hub's certificate and the national CA; every regency's
link must show a certificate the national CA issued."""

HEADER = "# Rendered by `pulih federation render` from the federation list: edit that, not this file.\n"


def _tls_block(tls: TlsFiles, *, timeout: int) -> dict[str, object]:
    block: dict[str, object] = {"cert_file": tls.cert_file, "key_file": tls.key_file, "ca_file": tls.ca_file}
    if tls.verify:
        block["verify"] = True
    block["timeout"] = timeout
    return block


def _jetstream(store_dir: Path | str, domain: str, sync_always: bool) -> str:
    lines = [f"  store_dir: {conf_value(str(store_dir))}", f"  domain: {conf_value(domain)}"]
    if sync_always:
        # JetStream fsyncs every 2 minutes by default: a killed process loses nothing, an OS crash
        # or power cut can. A lone server syncs every write.
        lines.append("  sync_interval: always")
    return "jetstream {\n" + "\n".join(lines) + "\n}\n"


def _address(host: str, port: int) -> str:
    return conf_value(f"{host}:{port}")


def render_link(
    fed: Federation,
    code: str,
    secrets: Secrets,
    *,
    hub_leaf_urls: Sequence[str] | None = None,
    tls: RegencyTls | None = None,
    up: bool = True,
) -> str:
    """``link.conf`` of regency ``code``: the leaf remote to the hub bound to account ``LINK``
    (every hub address in ``hub_leaf_urls``, ``host:port``, by default the list's), or, with
    ``up=False``, no remote at all: the link is cut."""
    fed.regency(code)
    if not up:
        return (
            HEADER
            + f"# The link of regency {code} to the national hub is down (pulih federation link-down).\n"
        )
    user, password = names.link_user(code), secrets.link(code)
    link_tls = tls.link if tls is not None else None
    scheme = "tls" if link_tls is not None else "nats-leaf"
    addresses = list(hub_leaf_urls) if hub_leaf_urls is not None else fed.hub.leaf_addresses()
    urls = [f"{scheme}://{user}:{password}@{a.split('://')[-1]}" for a in addresses]
    remote: dict[str, object] = {"urls": urls, "account": names.LINK_ACCOUNT}
    if link_tls is not None:
        remote["tls"] = _tls_block(link_tls, timeout=5)
    return (
        HEADER
        + f"# The link of regency {code} to the national hub: only account {names.LINK_ACCOUNT} crosses it.\n"
        + "leafnodes {\n  remotes = "
        + conf_value([remote], 1)
        + "\n}\n"
    )


def render_regency(
    fed: Federation,
    code: str,
    secrets: Secrets,
    *,
    listen_host: str = "0.0.0.0",
    client_port: int = 4222,
    store_dir: Path | str = "/var/lib/pulih/nats",
    hub_leaf_urls: Sequence[str] | None = None,
    tls: RegencyTls | None = None,
    link_up: bool = True,
    sync_always: bool = True,
    monitor_port: int | None = None,
) -> dict[str, str]:
    """The config files of regency ``code``'s server: file name → text (``nats.conf``,
    ``accounts.conf``, ``link.conf``; write them in one directory)."""
    regency = fed.regency(code)
    clinics = {c: secrets.clinic(code, c) for c in regency.clinics}
    accounts = regency_accounts(code, secrets.service(code), clinics, link=True)
    server = [
        HEADER,
        f"# Regency {code}, {regency.name} ({regency.province_name}): its own JetStream domain.\n",
        f"server_name: {conf_value(names.domain(code))}\n",
        f"listen: {_address(listen_host, client_port)}\n",
        f"max_payload: {MAX_PAYLOAD}\n",
        _jetstream(store_dir, names.domain(code), sync_always),
    ]
    if tls is not None and tls.clients is not None:
        server.append("tls " + conf_value(_tls_block(tls.clients, timeout=2)) + "\n")
    if monitor_port is not None:
        server.append(f"http: {_address(listen_host, monitor_port)}\n")
    server.append('include "accounts.conf"\ninclude "link.conf"\n')
    return {
        "nats.conf": "".join(server),
        "accounts.conf": HEADER + "accounts " + conf_value(accounts) + "\n",
        "link.conf": render_link(fed, code, secrets, hub_leaf_urls=hub_leaf_urls, tls=tls, up=link_up),
    }


def _hub_server(
    fed: Federation,
    secrets: Secrets,
    *,
    name: str,
    listen_host: str,
    client_port: int,
    leaf_port: int,
    store_dir: Path | str,
    tls: TlsFiles | None,
    sync_always: bool,
    monitor_port: int | None,
    cluster: str,
) -> str:
    links = {code: secrets.link(code) for code in fed.codes}
    accounts = hub_accounts(secrets.hub_admin(), secrets.national(), links)
    leafnodes: dict[str, object] = {"listen": f"{listen_host}:{leaf_port}"}
    if tls is not None:
        leafnodes["tls"] = _tls_block(tls, timeout=5)
    parts = [
        HEADER,
        f"# The national hub ({name}): every regency's aggregates, and nothing else.\n",
        f"server_name: {conf_value(name)}\n",
        f"listen: {_address(listen_host, client_port)}\n",
        f"max_payload: {MAX_PAYLOAD}\n",
        _jetstream(store_dir, names.HUB_DOMAIN, sync_always),
        cluster,
        "accounts " + conf_value(accounts) + "\n",
        "leafnodes " + conf_value(leafnodes) + "\n",
    ]
    if monitor_port is not None:
        parts.append(f"http: {_address(listen_host, monitor_port)}\n")
    return "".join(parts)


def _cluster_block(node: HubNode, nodes: Sequence[HubNode], listen_host: str, password: str) -> str:
    routes = [f"nats-route://{ROUTE_USER}:{password}@{n.host}:{n.cluster_port}" for n in nodes if n != node]
    block = {
        "name": names.CLUSTER_NAME,
        "listen": f"{listen_host}:{node.cluster_port}",
        "authorization": {"user": ROUTE_USER, "password": password},
        "routes": routes,
    }
    return "cluster " + conf_value(block) + "\n"


def render_hub(
    fed: Federation,
    secrets: Secrets,
    *,
    listen_host: str = "0.0.0.0",
    store_dir: Path | str = "/var/lib/pulih/nats",
    tls: TlsFiles | None = None,
    sync_always: bool = True,
    monitor_ports: Sequence[int] | None = None,
) -> dict[str, str]:
    """The hub's config files: ``hub.conf`` for one server, or ``hub-1.conf`` … for each node of a
    cluster (named after the nodes; each node's store is ``store_dir/<node name>``).
    ``monitor_ports`` (one per server) turns on the HTTP monitoring endpoint."""
    hub = fed.hub
    if not hub.clustered:
        return {
            "hub.conf": _hub_server(
                fed,
                secrets,
                name="hub",
                listen_host=listen_host,
                client_port=hub.client_port,
                leaf_port=hub.leaf_port,
                store_dir=store_dir,
                tls=tls,
                sync_always=sync_always,
                monitor_port=monitor_ports[0] if monitor_ports else None,
                cluster="",
            )
        }
    files = {}
    for i, node in enumerate(hub.nodes):
        files[f"{node.name}.conf"] = _hub_server(
            fed,
            secrets,
            name=node.name,
            listen_host=listen_host,
            client_port=node.client_port,
            leaf_port=node.leaf_port,
            store_dir=Path(store_dir) / node.name,
            tls=tls,
            sync_always=sync_always,
            monitor_port=monitor_ports[i] if monitor_ports else None,
            cluster=_cluster_block(node, hub.nodes, listen_host, secrets.cluster()),
        )
    return files


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write rendered ``files`` into ``directory`` (made if missing, mode 0700; files 0600:
    they hold passwords); return their paths."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for name, text in files.items():
        path = directory / name
        partial = path.with_name(name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o600)
        partial.replace(path)
        written.append(path)
    return written
