"""Where a local federation runs: its ports, its directories, and the state file that says so.

Ports, from ``--base-port B`` (default :data:`DEFAULT_BASE_PORT`): the hub's NATS client port
``B``, its leaf port ``B+1``, the national reporting ``B+2``; regency ``i`` (0-based, in the
order given) its NATS on ``B+10*(i+1)`` and its services on the next ports (outreach ``+1``,
rehab ``+2``, referral ``+3``, reporting ``+4``). Data: ``<data dir>/hub``, ``<data dir>/national``,
``<data dir>/r<code>``; the pids of everything running in ``<data dir>/pids``.

``up`` writes ``<data dir>/federation.json`` (:func:`write_state`): the commands that act on a
running federation (``link-down``, ``hub-down``, ``demo``…) find its ports from it
(:func:`saved_layout`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pulih.kit.federation import names
from pulih.kit.federation.topology import FederationError
from pulih.kit.local_regency import InstalledService, installed_services

DEFAULT_BASE_PORT = 15200
DEFAULT_DATA_DIR = Path(".pulih/federation")
DEFAULT_FILE = Path("deploy/federation.toml")
STATE_FILE = "federation.json"
"""``<data dir>/federation.json``: the base port, the regencies and the list of the running
federation, for ``link-down``, ``link-up``, ``hub-down``, ``hub-up`` and ``demo``."""
HUB_HELD = "held"
"""``<data dir>/hub/held``: while it exists the hub's server is kept stopped."""
LOCK_FILE = "lock"
"""``<data dir>/lock``: locked by the ``up`` that runs there, so that a second one is refused."""
CLOCK_FILE = "clock"
"""``<data dir>/clock``: the date ``demo`` left the manual clocks on; the next ``up`` on the
manual clock starts them there (unless ``PULIH_CLOCK_START`` says otherwise)."""
NATIONAL_SERVICE = "reporting"
"""The service that runs in national mode at the hub."""


@dataclass(frozen=True)
class RegencyPlace:
    """Where one regency runs: its NATS port, its services' ports, its data."""

    code: str
    nats_port: int
    ports: dict[str, int]
    data_dir: Path

    @property
    def nats_dir(self) -> Path:
        """The regency server's directory: its rendered configs, its JetStream store, its log."""
        return self.data_dir / "nats"

    def url(self, service: str) -> str:
        """A service's base URL."""
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def link_cut(self) -> bool:
        """Whether ``link-down`` cut this regency's link (its rendered ``link.conf`` has no remote)."""
        link = self.nats_dir / "link.conf"
        return link.exists() and "remotes" not in link.read_text()


@dataclass(frozen=True)
class Layout:
    """Every port and directory of a local federation."""

    data_dir: Path
    base_port: int
    hub_client_port: int
    hub_leaf_port: int
    national_port: int
    regencies: list[RegencyPlace]

    @property
    def hub_dir(self) -> Path:
        """The hub server's directory."""
        return self.data_dir / "hub"

    @property
    def national_dir(self) -> Path:
        """The national reporting's data dir."""
        return self.data_dir / "national"

    @property
    def hub_held(self) -> bool:
        """Whether ``hub-down`` holds the hub."""
        return (self.hub_dir / HUB_HELD).exists()

    @property
    def national_url(self) -> str:
        """The national reporting's base URL (its dashboard at ``/``)."""
        return f"http://127.0.0.1:{self.national_port}"

    def regency(self, code: str) -> RegencyPlace:
        """The place of regency ``code`` (:class:`FederationError` if it is not in this federation)."""
        for place in self.regencies:
            if place.code == code:
                return place
        known = ", ".join(p.code for p in self.regencies)
        raise FederationError(f"regency {code} is not in this local federation (it runs {known})")

    def ports(self) -> list[int]:
        """Every port the federation listens on."""
        ports = [self.hub_client_port, self.hub_leaf_port, self.national_port]
        for place in self.regencies:
            ports += [place.nats_port, *place.ports.values()]
        return ports


def layout(data_dir: Path, base_port: int, codes: list[str], services: list[InstalledService]) -> Layout:
    """The ports and directories of a federation of ``codes`` from ``base_port`` (module doc)."""
    if len(services) > 9:
        raise FederationError("a regency has ten ports: at most nine services")
    data_dir = data_dir.resolve()
    places = [
        RegencyPlace(
            code=code,
            nats_port=base_port + 10 * (i + 1),
            ports={s.name: base_port + 10 * (i + 1) + 1 + j for j, s in enumerate(services)},
            data_dir=data_dir / f"r{code}",
        )
        for i, code in enumerate(codes)
    ]
    return Layout(data_dir, base_port, base_port, base_port + 1, base_port + 2, places)


def parse_codes(text: str) -> list[str]:
    """``3301,3302,7471`` as a list of checked regency codes, each once."""
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise FederationError("name at least one regency: --regencies 3301,3302,7471")
    for code in codes:
        try:
            names.check_code(code)
        except ValueError as exc:
            raise FederationError(str(exc)) from None
    if len(set(codes)) != len(codes):
        raise FederationError(f"a regency is named twice in {text}")
    return codes


def nats_url(user: str, password: str, port: int) -> str:
    """A client URL with credentials on the loopback address."""
    return f"nats://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"


def write_state(lay: Layout, federation_file: Path | None) -> None:
    """``<data dir>/federation.json``: what ``link-down`` and friends need to find their way."""
    state = {
        "base_port": lay.base_port,
        "regencies": [p.code for p in lay.regencies],
        "file": str(federation_file) if federation_file is not None else None,
    }
    (lay.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def read_state(data_dir: Path) -> dict[str, object]:
    """The state an ``up`` wrote (:class:`FederationError` if none ever ran in ``data_dir``)."""
    path = data_dir.resolve() / STATE_FILE
    if not path.exists():
        raise FederationError(
            f"no local federation in {data_dir.resolve()}: start one with `pulih federation up` "
            "(or give its --data-dir)"
        )
    state: dict[str, object] = json.loads(path.read_text())
    return state


def saved_layout(data_dir: Path) -> Layout:
    """The layout of the federation an ``up`` ran in ``data_dir`` (from its state file)."""
    state = read_state(data_dir)
    codes = [str(c) for c in state["regencies"]]  # type: ignore[attr-defined]
    return layout(data_dir, int(state["base_port"]), codes, installed_services())  # type: ignore[call-overload]
