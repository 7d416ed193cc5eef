"""The federation as declared in ``deploy/federation.toml``: the hub and every regency.

::

    [hub]
    host = "hub.pulih.example"       # what the regencies dial
    client_port = 4222
    leaf_port = 7422
    # three nodes instead of one; NATIONAL is then kept at R3
    # nodes = [ {name = "hub-1", host = "hub-1.pulih.example", cluster_port = 6222}, ... ]

    [[regencies]]
    code = "3301"                    # Kemendagri; the province is its first two digits
    name = "Cilacap"
    clinics = ["klinik-pratama-demo", "rsud-cilacap"]

Adding a regency is adding a ``[[regencies]]`` entry, rendering again (``pulih federation
render``) and declaring the national stream again (``pulih federation declare``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pulih.kit.federation.names import check_clinic, check_code, province_name

DEFAULT_CLIENT_PORT = 4222
DEFAULT_LEAF_PORT = 7422
DEFAULT_CLUSTER_PORT = 6222


class FederationError(ValueError):
    """The federation list is wrong; the message says where and how."""


@dataclass(frozen=True)
class HubNode:
    """One server of the hub's 3-node cluster."""

    name: str
    host: str
    client_port: int = DEFAULT_CLIENT_PORT
    leaf_port: int = DEFAULT_LEAF_PORT
    cluster_port: int = DEFAULT_CLUSTER_PORT


@dataclass(frozen=True)
class Hub:
    """The national hub: one server (``nodes`` empty) or a cluster of three."""

    host: str = "127.0.0.1"
    client_port: int = DEFAULT_CLIENT_PORT
    leaf_port: int = DEFAULT_LEAF_PORT
    nodes: tuple[HubNode, ...] = ()

    @property
    def clustered(self) -> bool:
        """Whether the hub is a cluster (``NATIONAL`` at R3) rather than one server."""
        return bool(self.nodes)

    @property
    def replicas(self) -> int:
        """How many copies of the national streams the hub keeps."""
        return 3 if self.clustered else 1

    def leaf_addresses(self) -> list[str]:
        """Every ``host:port`` a regency's link may dial (each node of a cluster)."""
        if self.nodes:
            return [f"{n.host}:{n.leaf_port}" for n in self.nodes]
        return [f"{self.host}:{self.leaf_port}"]

    def client_addresses(self) -> list[str]:
        """Every ``host:port`` a client of the hub may connect to."""
        if self.nodes:
            return [f"{n.host}:{n.client_port}" for n in self.nodes]
        return [f"{self.host}:{self.client_port}"]


@dataclass(frozen=True)
class Regency:
    """A regency (kabupaten or kota) with its clinics."""

    code: str
    name: str
    clinics: tuple[str, ...] = ()

    @property
    def province(self) -> str:
        """The province code, the first two digits of the regency's code."""
        return self.code[:2]

    @property
    def province_name(self) -> str:
        """The province's name."""
        return province_name(self.province)


@dataclass(frozen=True)
class Federation:
    """The hub and the regencies, in the order of the list."""

    hub: Hub = field(default_factory=Hub)
    regencies: tuple[Regency, ...] = ()

    @property
    def codes(self) -> list[str]:
        """Every regency's code, in the order of the list."""
        return [r.code for r in self.regencies]

    def regency(self, code: str) -> Regency:
        """The regency with ``code`` (``KeyError`` if the list has none)."""
        for r in self.regencies:
            if r.code == code:
                return r
        raise KeyError(f"regency {code} is not in the federation")

    def with_regencies(self, codes: Iterable[str]) -> Federation:
        """The same hub with exactly the regencies ``codes``, in that order: those of the list
        as declared, any other (for a local demo) by its code, without clinics."""
        known = {r.code: r for r in self.regencies}
        chosen = []
        for code in codes:
            check_code(code)
            chosen.append(known.get(code, Regency(code, f"Kabupaten {code}")))
        return replace(self, regencies=_checked(chosen, "--regencies"))

    def with_hub(self, hub: Hub) -> Federation:
        """The same regencies with another hub (other hosts or ports, e.g. on one machine)."""
        return replace(self, hub=hub)


def _checked(regencies: list[Regency], where: str) -> tuple[Regency, ...]:
    seen: set[str] = set()
    for r in regencies:
        if r.code in seen:
            raise FederationError(f"{where}: regency {r.code} is listed twice")
        seen.add(r.code)
    return tuple(regencies)


def _port(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise FederationError(f"{where}: a port is a number from 1 to 65535, not {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise FederationError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise FederationError(f"{where}: unknown key(s) {', '.join(extra)}")


def _hub(table: object) -> Hub:
    if not isinstance(table, dict):
        raise FederationError("[hub] must be a table")
    _unknown(table, {"host", "client_port", "leaf_port", "nodes"}, "[hub]")
    client_port = _port(table.get("client_port", DEFAULT_CLIENT_PORT), "[hub] client_port")
    leaf_port = _port(table.get("leaf_port", DEFAULT_LEAF_PORT), "[hub] leaf_port")
    nodes = []
    raw_nodes = table.get("nodes", [])
    if not isinstance(raw_nodes, list):
        raise FederationError("[hub] nodes must be a list of tables")
    for i, node in enumerate(raw_nodes):
        where = f"[hub] nodes[{i}]"
        if not isinstance(node, dict):
            raise FederationError(f"{where} must be a table")
        _unknown(node, {"name", "host", "client_port", "leaf_port", "cluster_port"}, where)
        nodes.append(
            HubNode(
                name=_text(node, "name", where),
                host=_text(node, "host", where),
                client_port=_port(node.get("client_port", client_port), f"{where} client_port"),
                leaf_port=_port(node.get("leaf_port", leaf_port), f"{where} leaf_port"),
                cluster_port=_port(node.get("cluster_port", DEFAULT_CLUSTER_PORT), f"{where} cluster_port"),
            )
        )
    if nodes and len(nodes) != 3:
        raise FederationError(f"[hub] nodes: a hub cluster has three nodes, not {len(nodes)}")
    if len({n.name for n in nodes}) != len(nodes):
        raise FederationError("[hub] nodes: two nodes have the same name")
    return Hub(
        host=_text(table, "host", "[hub]", "127.0.0.1"),
        client_port=client_port,
        leaf_port=leaf_port,
        nodes=tuple(nodes),
    )


def _regency(entry: object, i: int) -> Regency:
    where = f"[[regencies]] #{i + 1}"
    if not isinstance(entry, dict):
        raise FederationError(f"{where} must be a table")
    _unknown(entry, {"code", "name", "clinics"}, where)
    code = entry.get("code")
    if isinstance(code, int):
        raise FederationError(f'{where}: write the code as a string, code = "{code}"')
    try:
        check_code(code)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FederationError(f"{where}: {exc}") from None
    assert isinstance(code, str)
    where = f"regency {code}"
    clinics = entry.get("clinics", [])
    if not isinstance(clinics, list):
        raise FederationError(f"{where}: clinics must be a list of clinic ids")
    for clinic in clinics:
        try:
            check_clinic(clinic)
        except ValueError as exc:
            raise FederationError(f"{where}: {exc}") from None
    if len(set(clinics)) != len(clinics):
        raise FederationError(f"{where}: a clinic is listed twice")
    return Regency(code=code, name=_text(entry, "name", where), clinics=tuple(clinics))


def parse_federation(data: Mapping[str, Any]) -> Federation:
    """The federation of a parsed TOML document; :class:`FederationError` says what is wrong."""
    _unknown(data, {"hub", "regencies"}, "federation list")
    regencies = data.get("regencies", [])
    if not isinstance(regencies, list):
        raise FederationError("regencies must be an array of tables, [[regencies]]")
    return Federation(
        hub=_hub(data.get("hub", {})),
        regencies=_checked([_regency(e, i) for i, e in enumerate(regencies)], "federation list"),
    )


def load_federation(path: Path) -> Federation:
    """Read and check the federation list at ``path`` (``deploy/federation.toml``)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FederationError(f"{path}: {exc}") from None
    try:
        return parse_federation(data)
    except FederationError as exc:
        raise FederationError(f"{path}: {exc}") from None
