"""deploy/'s TLS against real nats-servers run from the configs ``pulih federation render``
writes, with certificates issued at run time by deploy/tls/issue_certificates.py and installed
where deploy/README.md says: clinics and services speak TLS to the regency, a plain connection or
a client that does not trust the regency's CA gets nowhere, and the leaf link to the national hub
is TLS with a certificate both ways, over which a regency's aggregates reach ``NATIONAL``."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from federation_support import ConfiguredServer, aggregate, local_federation, publish_event, stream_bodies
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig
from referral_regency import deploy_module

from pulih.kit.federation import names
from pulih.kit.federation.accounts import consumer_name, inbox_prefix
from pulih.kit.federation.national_stream import declare_national_streams
from pulih.kit.federation.render import (
    DEPLOYED_HUB_TLS,
    DEPLOYED_REGENCY_TLS,
    RegencyTls,
    TlsFiles,
    render_hub,
    render_regency,
    write_files,
)
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import Federation
from pulih.kit.messaging import (
    ensure_regency_stream,
    make_broker,
    nats_tls,
    regency_stream_config,
    stream_publisher,
)
from pulih.kit.nats_server import free_port, nats_server_binary
from pulih.kit.settings import Settings
from pulih.kit.testing import REGENCY, eventually, make_settings

pytestmark = pytest.mark.system

certificates = deploy_module("deploy/tls/issue_certificates.py", "issue_certificates")
HOST = "127.0.0.1"
STREAM = names.regency_stream(REGENCY)


@dataclass(frozen=True)
class Certificates:
    """Every directory deploy/README.md tells an operator to make, in a test's tmp dir."""

    regency_ca: Path  # the regency's CA (ca.pem, ca-key.pem): kept off the server
    regency: Path  # /etc/pulih/tls on the regency's server: server.pem, server-key.pem, ca.pem
    national_ca: Path
    hub: Path  # /etc/pulih/tls on the hub
    leaf: Path  # /etc/pulih/tls/leaf on the regency's server: client.pem, client-key.pem, ca.pem
    stranger_ca: Path  # a CA nobody here trusts
    stranger: Path  # a client certificate it issued
    rogue_leaf: Path  # that client certificate, set up as a leaf that trusts the national CA
    impostor_hub: Path  # a hub's server certificate it issued


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    root = tmp_path_factory.mktemp("tls")
    made = Certificates(*(root / name for name in Certificates.__dataclass_fields__))
    certificates.issue_ca(made.regency_ca, "Pulih test regency 3301")
    certificates.issue_server(made.regency, made.regency_ca, ["localhost", "127.0.0.1"])
    certificates.issue_ca(made.national_ca, "Pulih test national")
    certificates.issue_server(made.hub, made.national_ca, ["localhost", "127.0.0.1"])
    certificates.issue_client(made.leaf, made.national_ca, "leaf-r3301")
    certificates.issue_ca(made.stranger_ca, "Someone else")
    certificates.issue_client(made.stranger, made.stranger_ca, "leaf-r3301")
    shutil.copytree(made.stranger, made.rogue_leaf)
    shutil.copy(made.national_ca / "ca.pem", made.rogue_leaf / "ca.pem")
    certificates.issue_server(made.impostor_hub, made.stranger_ca, ["localhost", "127.0.0.1"])
    return made


@pytest.fixture
def fed() -> Federation:
    """Regency 3301 as deploy/federation.toml declares it (its clinics), a hub on free ports."""
    return local_federation([REGENCY])


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return Secrets.load_or_create(tmp_path / "secrets.json")


def clinic_of(fed: Federation) -> str:
    """A clinic of regency 3301 in deploy/federation.toml."""
    return fed.regency(REGENCY).clinics[0]


def installed(files: TlsFiles, directory: Path, *, verify: bool | None = None) -> TlsFiles:
    """``files`` (where deploy/README.md installs them) as found in ``directory`` instead."""

    def moved(path: str) -> str:
        return str(directory / Path(path).name)

    return TlsFiles(
        moved(files.cert_file),
        moved(files.key_file),
        moved(files.ca_file),
        verify=files.verify if verify is None else verify,
    )


def regency_tls(certs: Certificates, *, leaf: Path | None = None, verify: bool = False) -> RegencyTls:
    """The regency's deployed TLS (clients: ``certs.regency``; link: ``leaf``, by default
    ``certs.leaf``); ``verify``: every client must show a certificate of the regency's CA."""
    assert DEPLOYED_REGENCY_TLS.clients is not None and DEPLOYED_REGENCY_TLS.link is not None
    return RegencyTls(
        clients=installed(DEPLOYED_REGENCY_TLS.clients, certs.regency, verify=verify),
        link=installed(DEPLOYED_REGENCY_TLS.link, leaf or certs.leaf),
    )


def regency_server(
    directory: Path,
    fed: Federation,
    secrets: Secrets,
    tls: RegencyTls,
    *,
    link_up: bool = False,
    edit_link: Any = None,
) -> ConfiguredServer:
    """Regency 3301's server, rendered into ``directory`` (not started); its link to the hub
    only if ``link_up`` (``edit_link`` may rewrite its ``link.conf``)."""
    port, monitor = free_port(), free_port()
    files = render_regency(
        fed,
        REGENCY,
        secrets,
        listen_host=HOST,
        client_port=port,
        store_dir=directory / "store",
        tls=tls,
        link_up=link_up,
        sync_always=False,
        monitor_port=monitor,
    )
    if edit_link is not None:
        files["link.conf"] = edit_link(files["link.conf"])
    write_files(directory, files)
    return ConfiguredServer(
        names.domain(REGENCY), directory / "nats.conf", port, monitor, directory / "nats.log"
    )


def hub_server(directory: Path, fed: Federation, secrets: Secrets, tls: TlsFiles) -> ConfiguredServer:
    """The national hub, rendered into ``directory`` with ``tls`` on its leaf port (not started)."""
    monitor = free_port()
    files = render_hub(
        fed,
        secrets,
        listen_host=HOST,
        store_dir=directory / "store",
        tls=tls,
        sync_always=False,
        monitor_ports=[monitor],
    )
    write_files(directory, files)
    return ConfiguredServer(
        "hub", directory / "hub.conf", fed.hub.client_port, monitor, directory / "hub.log"
    )


@contextmanager
def running(*servers: ConfiguredServer) -> Iterator[None]:
    """Start ``servers`` (in order); stop them all on the way out."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def server(
    tmp_path: Path, fed: Federation, secrets: Secrets, certs: Certificates
) -> Iterator[ConfiguredServer]:
    regency = regency_server(tmp_path / "r3301", fed, secrets, regency_tls(certs))
    with running(regency):
        yield regency


def trusting(ca_dir: Path, client: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
    if client is not None:
        context.load_cert_chain(str(client / "client.pem"), str(client / "client-key.pem"))
    return context


def service_url(server: ConfiguredServer, secrets: Secrets) -> str:
    """The URL Pulih's services connect with, by the name the regency's certificate carries."""
    return f"nats://{names.SERVICE_USER}:{secrets.service(REGENCY)}@localhost:{server.port}"


def service_settings(tmp_path: Path, server: ConfiguredServer, secrets: Secrets, **extra: Any) -> Settings:
    return make_settings(tmp_path, nats_url=service_url(server, secrets), **extra)


async def connect_clinic(
    server: ConfiguredServer, fed: Federation, secrets: Secrets, tls: ssl.SSLContext
) -> NatsClient:
    clinic = clinic_of(fed)
    return await nats.connect(
        f"nats://localhost:{server.port}",
        user=consumer_name(clinic),
        password=secrets.clinic(REGENCY, clinic),
        inbox_prefix=inbox_prefix(clinic),
        tls=tls,
        allow_reconnect=False,
        connect_timeout=3,
    )


@pytest.fixture
async def stream_of(
    tmp_path: Path, server: ConfiguredServer, secrets: Secrets, certs: Certificates
) -> AsyncIterator[Any]:
    """Pulih's service side, connected as the services connect: make_broker with nats_tls."""
    settings = service_settings(tmp_path, server, secrets, PULIH_NATS_CA_FILE=certs.regency / "ca.pem")
    broker = make_broker(settings.nats_url, name="tls-test", tls=nats_tls(settings))
    await asyncio.wait_for(broker.connect(), 10)  # it would retry for ever
    await ensure_regency_stream(broker, REGENCY)
    try:
        yield broker
    finally:
        await broker.stop()


async def test_a_clinic_that_trusts_the_regency_ca_reads_and_answers_over_tls(
    server: ConfiguredServer, fed: Federation, secrets: Secrets, certs: Certificates, stream_of: Any
) -> None:
    assert stream_of.connection.max_payload == 256 * 1024, "the rendered max_payload applies"
    clinic_id = clinic_of(fed)
    referral = json.dumps({"referral": str(uuid.uuid4())}).encode()
    publish = stream_publisher(stream_of, REGENCY)
    await publish(referral, f"ibm.{REGENCY}.referral.referred_to_clinic.{clinic_id}", {"Nats-Msg-Id": "r-1"})

    clinic = await connect_clinic(server, fed, secrets, trusting(certs.regency))
    try:
        js = clinic.jetstream()
        sub = await js.pull_subscribe(
            f"ibm.{REGENCY}.referral.*.{clinic_id}",
            durable=consumer_name(clinic_id),
            stream=STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        [received] = await sub.fetch(1, timeout=5)
        assert received.data == referral
        await received.ack()
        ack = await js.publish(
            f"ibm.{REGENCY}.clinic.{clinic_id}.referral_accepted", b"accepted", stream=STREAM
        )
        assert ack.stream == STREAM and ack.seq == 2

        async with httpx.AsyncClient() as http:
            connections = (await http.get(f"{server.monitor_url}/connz?auth=1")).json()["connections"]
        by_user = {c["authorized_user"]: c for c in connections}
        assert by_user[consumer_name(clinic_id)]["tls_version"].startswith("1.")
        assert by_user[names.SERVICE_USER]["tls_version"].startswith("1.")
    finally:
        await clinic.close()


async def test_a_plain_connection_is_refused(
    server: ConfiguredServer, secrets: Secrets, stream_of: Any
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        info = json.loads((await reader.readline()).decode().split(" ", 1)[1])
        assert info["tls_required"] is True
        connect = {"user": "pulih", "pass": secrets.service(REGENCY), "verbose": False, "pedantic": False}
        plain = f"PUB ibm.{REGENCY}.outreach.plain 5\r\nplain\r\nPING\r\n"
        writer.write(f"CONNECT {json.dumps(connect)}\r\n{plain}".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)  # until the server hangs up
    finally:
        writer.close()
    assert b"PONG" not in answer and b"+OK" not in answer
    info_now = await stream_of.connection.jetstream().stream_info(STREAM)
    assert info_now.state.messages == 0


@pytest.mark.parametrize("trust", ["system CAs", "another CA"])
async def test_a_client_that_does_not_trust_the_regency_ca_is_refused(
    server: ConfiguredServer, fed: Federation, secrets: Secrets, certs: Certificates, trust: str
) -> None:
    tls = ssl.create_default_context() if trust == "system CAs" else trusting(certs.stranger_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect_clinic(server, fed, secrets, tls)


async def test_with_verify_on_a_client_needs_a_certificate_from_the_regency_ca(
    tmp_path: Path, fed: Federation, secrets: Secrets, certs: Certificates
) -> None:
    server = regency_server(tmp_path / "r3301", fed, secrets, regency_tls(certs, verify=True))
    assert "verify" in (tmp_path / "r3301" / "nats.conf").read_text()
    with running(server):
        service_cert = tmp_path / "service-cert"
        certificates.issue_client(service_cert, certs.regency_ca, "pulih")
        settings = service_settings(
            tmp_path,
            server,
            secrets,
            PULIH_NATS_CA_FILE=certs.regency / "ca.pem",
            PULIH_NATS_CERT_FILE=service_cert / "client.pem",
            PULIH_NATS_KEY_FILE=service_cert / "client-key.pem",
        )
        broker = make_broker(settings.nats_url, name="tls-verify-test", tls=nats_tls(settings))
        await asyncio.wait_for(broker.connect(), 10)  # it would retry for ever
        try:
            await ensure_regency_stream(broker, REGENCY)
            await stream_publisher(broker, REGENCY)(b"x", f"ibm.{REGENCY}.outreach.x", {"Nats-Msg-Id": "x"})
        finally:
            await broker.stop()

        for refused, reason in (
            (trusting(certs.regency), "client didn't provide a certificate"),
            (trusting(certs.regency, client=certs.stranger), "certificate signed by unknown authority"),
        ):
            with pytest.raises((ssl.SSLError, ConnectionError, nats.errors.Error)):
                clinic = await connect_clinic(server, fed, secrets, refused)
                await clinic.flush(timeout=2)  # TLS 1.3: a refused certificate shows after the handshake

            async def logged(reason: str = reason) -> bool:
                return reason in server.log_file.read_text()

            await eventually(logged)
        clinic_cert = tmp_path / "clinic-cert"
        certificates.issue_client(clinic_cert, certs.regency_ca, consumer_name(clinic_of(fed)))
        clinic = await connect_clinic(server, fed, secrets, trusting(certs.regency, client=clinic_cert))
        await clinic.flush(timeout=2)
        await clinic.close()


def test_settings_take_a_client_certificate_only_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_NATS_KEY_FILE"):
        Settings(PULIH_NATS_CERT_FILE=tmp_path / "client.pem")
    assert nats_tls(Settings()) is None, "no TLS settings: nats-py's defaults"


def nats_server_test(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)


def installed_everywhere(text: str, certs: Certificates, *, tls: Path) -> str:
    """A rendered config with deploy's certificate paths pointing at the test's: ``/etc/pulih/tls/``
    at ``tls``, the leaf's ``/etc/pulih/tls/leaf/`` at ``certs.leaf``."""
    return text.replace("/etc/pulih/tls/leaf/", f"{certs.leaf}/").replace("/etc/pulih/tls/", f"{tls}/")


def test_the_deploy_configs_are_valid_with_their_certificates(
    tmp_path: Path, fed: Federation, secrets: Secrets, certs: Certificates
) -> None:
    """What ``pulih federation render`` writes (deploy's certificate paths), once the certificates
    are where deploy/README.md installs them."""
    regency_files = render_regency(fed, REGENCY, secrets, tls=DEPLOYED_REGENCY_TLS)
    assert (
        "tls://" in regency_files["link.conf"]
        and "/etc/pulih/tls/leaf/client.pem" in regency_files["link.conf"]
    )
    write_files(
        tmp_path / "r3301",
        {k: installed_everywhere(v, certs, tls=certs.regency) for k, v in regency_files.items()},
    )
    hub_files = render_hub(fed, secrets, tls=DEPLOYED_HUB_TLS)
    assert "verify" in hub_files["hub.conf"]
    write_files(
        tmp_path / "hub", {k: installed_everywhere(v, certs, tls=certs.hub) for k, v in hub_files.items()}
    )
    for config in (tmp_path / "r3301" / "nats.conf", tmp_path / "hub" / "hub.conf"):
        checked = nats_server_test(config)
        assert checked.returncode == 0, f"{config}\n{checked.stdout}{checked.stderr}"
    # Without its certificates the regency's server does not start: its clients never go plain.
    write_files(tmp_path / "bare", regency_files)
    checked = nats_server_test(tmp_path / "bare" / "nats.conf")
    assert checked.returncode != 0 and "server.pem" in checked.stdout + checked.stderr


def without_certificate(link: str) -> str:
    """``link.conf`` with no certificate to show (the CA to check the hub with stays)."""
    edited = re.sub(r'^\s*"(cert_file|key_file)": .*\n', "", link, flags=re.MULTILINE)
    assert "cert_file" not in edited and "ca_file" in edited
    return edited


def hub_and_regency(
    tmp_path: Path,
    fed: Federation,
    secrets: Secrets,
    certs: Certificates,
    *,
    hub_tls: Path,
    leaf_tls: Path,
    leaf_certificate: bool = True,
) -> tuple[ConfiguredServer, ConfiguredServer]:
    """The hub, rendered with its leaf port's TLS files in ``hub_tls``, and regency 3301 linking to
    it with its leaf's files in ``leaf_tls`` (without cert_file and key_file unless
    ``leaf_certificate``); neither started."""
    hub = hub_server(tmp_path / "hub", fed, secrets, installed(DEPLOYED_HUB_TLS, hub_tls))
    regency = regency_server(
        tmp_path / "r3301",
        fed,
        secrets,
        regency_tls(certs, leaf=leaf_tls),
        link_up=True,
        edit_link=None if leaf_certificate else without_certificate,
    )
    return hub, regency


async def leaf_count(hub: ConfiguredServer) -> int:
    return int((await hub.leafz())["leafnodes"])


async def declare_national(hub: ConfiguredServer, secrets: Secrets) -> None:
    """``NATIONAL`` (a source for 3301) and ``NATIONAL_DLQ``, declared as the hub's administrator."""
    nc = await nats.connect(f"nats://{names.HUB_ADMIN_USER}:{secrets.hub_admin()}@{HOST}:{hub.port}")
    try:
        await declare_national_streams(nc.jetstream(timeout=5), [REGENCY])
    finally:
        await nc.close()


async def publish_aggregate(regency: ConfiguredServer, secrets: Secrets, certs: Certificates) -> str:
    """Regency 3301's stream, declared as the services do, and an aggregate published into it
    (over TLS); return the aggregate's event id."""
    nc = await nats.connect(service_url(regency, secrets), tls=trusting(certs.regency), connect_timeout=3)
    try:
        js = nc.jetstream()
        await js.add_stream(regency_stream_config(REGENCY))
        event = aggregate(REGENCY)
        ack = await publish_event(js, event)
        assert ack.stream == STREAM
        return str(event.id)
    finally:
        await nc.close()


async def national_ids(hub: ConfiguredServer, secrets: Secrets) -> list[str]:
    """The event ids of every message in ``NATIONAL``."""
    url = f"nats://{names.HUB_ADMIN_USER}:{secrets.hub_admin()}@{HOST}:{hub.port}"
    return [body["id"] for _, body in await stream_bodies(url, names.NATIONAL_STREAM)]


async def test_a_regencys_aggregate_reaches_national_over_the_tls_link(
    tmp_path: Path, fed: Federation, secrets: Secrets, certs: Certificates
) -> None:
    hub, regency = hub_and_regency(tmp_path, fed, secrets, certs, hub_tls=certs.hub, leaf_tls=certs.leaf)
    with running(hub, regency):
        await declare_national(hub, secrets)
        sent = await publish_aggregate(regency, secrets, certs)
        await eventually(lambda: leaf_count(hub), until=lambda n: n == 1)
        assert "tls://" in (tmp_path / "r3301" / "link.conf").read_text()
        assert await eventually(lambda: national_ids(hub, secrets), until=bool, timeout=20) == [sent]
        [leaf] = (await hub.leafz())["leafs"]
        assert leaf["name"] == names.domain(REGENCY) and leaf["account"] == names.hub_link_account(REGENCY)


@pytest.mark.parametrize(
    ("case", "refused_by", "reason"),
    [
        # Go's TLS does not even offer a certificate the hub's CA did not sign: none is shown
        ("the regency has another CA's certificate", "hub", "didn't provide a certificate"),
        ("the regency shows no certificate", "hub", "didn't provide a certificate"),
        ("the hub shows another CA's certificate", "regency", "certificate signed by unknown authority"),
    ],
)
async def test_the_link_is_refused_unless_both_sides_show_a_certificate_of_the_national_ca(
    tmp_path: Path,
    fed: Federation,
    secrets: Secrets,
    certs: Certificates,
    case: str,
    refused_by: str,
    reason: str,
) -> None:
    hub, regency = hub_and_regency(
        tmp_path,
        fed,
        secrets,
        certs,
        hub_tls=certs.impostor_hub if case.startswith("the hub") else certs.hub,
        leaf_tls=certs.rogue_leaf if case == "the regency has another CA's certificate" else certs.leaf,
        leaf_certificate="no certificate" not in case,
    )
    refusing = hub if refused_by == "hub" else regency
    with running(hub, regency):
        await declare_national(hub, secrets)
        await publish_aggregate(regency, secrets, certs)

        async def refusals() -> int:
            return refusing.log_file.read_text().count(reason)

        await eventually(refusals, until=lambda n: n >= 2)  # refused, and refused again on retry
        assert await leaf_count(hub) == 0
        assert await national_ids(hub, secrets) == [], "nothing crossed"
