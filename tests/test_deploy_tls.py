"""deploy/'s TLS against real nats-servers, with certificates issued at run time by
deploy/tls/issue_certificates.py: clinics and services speak TLS to the regency, a plain
connection or a client that does not trust the regency's CA gets nowhere, and the leaf link to
the national hub is TLS with a certificate both ways."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig
from referral_regency import (
    CLINIC_PASSWORDS,
    ROOT,
    SERVICE_PASSWORD,
    clinic_users,
    deploy_module,
    secured_nats,
    service_url,
)

from pulih.kit.messaging import ensure_regency_stream, make_broker, nats_tls, stream_publisher
from pulih.kit.nats_server import NatsServer, free_port, nats_server_binary
from pulih.kit.settings import Settings
from pulih.kit.testing import REGENCY, eventually, make_settings

pytestmark = pytest.mark.system

certificates = deploy_module("deploy/tls/issue_certificates.py", "issue_certificates")
DEPLOY = ROOT / "deploy" / "nats"
A = "klinik-pratama-sehat"
STREAM = f"IBM_{REGENCY}"


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


def deploy_conf(name: str, tls: Path, leaf: Path | None = None) -> str:
    """A config file of deploy/nats with its certificate paths pointing at ``tls`` (and ``leaf``)."""
    text = (DEPLOY / name).read_text()
    if leaf is not None:
        text = text.replace("/etc/pulih/tls/leaf/", f"{leaf}/")
    return text.replace("/etc/pulih/tls/", f"{tls}/")


def block(text: str, key: str) -> str:
    """The top-level ``key { … }`` block of a nats-server config, as written."""
    found = re.search(rf"^{key} \{{", text, re.MULTILINE)
    assert found, f"no top-level {key} block"
    depth = 0
    for end in range(found.start(), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "}":
            return text[found.start() : end + 1]
    raise AssertionError(f"unbalanced {key} block")


def setting(text: str, key: str) -> str:
    found = re.search(rf"^{key}: .*$", text, re.MULTILINE)
    assert found, f"no top-level {key}"
    return found.group(0)


def regency_server(store: Path, certs: Certificates, *, verify: bool = False) -> NatsServer:
    """A regency's nats-server with deploy's users, client TLS and payload limit, and monitoring."""
    regency = deploy_conf("regency.conf", certs.regency)
    tls = block(regency, "tls")
    if verify:  # the option regency.conf describes: every client shows a certificate
        assert "verify: false" in tls
        tls = tls.replace("verify: false", "verify: true")
    server = secured_nats(store)
    server.extra_config += f"\n{setting(regency, 'max_payload')}\n{tls}\nhttp: 127.0.0.1:{free_port()}\n"
    return server


def monitoring(server: NatsServer) -> str:
    port = re.search(r"^http: 127\.0\.0\.1:(\d+)$", server.config_text(), re.MULTILINE)
    assert port
    return f"http://127.0.0.1:{port.group(1)}"


@pytest.fixture
def server(tmp_path: Path, certs: Certificates) -> Iterator[NatsServer]:
    running = regency_server(tmp_path / "nats", certs).start()
    try:
        yield running
    finally:
        running.stop()


def trusting(ca_dir: Path, client: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
    if client is not None:
        context.load_cert_chain(str(client / "client.pem"), str(client / "client-key.pem"))
    return context


def service_settings(tmp_path: Path, server: NatsServer, **extra: Any) -> Settings:
    return make_settings(
        tmp_path, nats_url=f"nats://pulih:{SERVICE_PASSWORD}@localhost:{server.port}", **extra
    )


async def connect_clinic(server: NatsServer, tls: ssl.SSLContext) -> NatsClient:
    return await nats.connect(
        f"nats://localhost:{server.port}",
        user=clinic_users.consumer_name(A),
        password=CLINIC_PASSWORDS[A],
        inbox_prefix=clinic_users.inbox_prefix(A),
        tls=tls,
        allow_reconnect=False,
        connect_timeout=3,
    )


@pytest.fixture
async def stream_of(tmp_path: Path, server: NatsServer, certs: Certificates) -> AsyncIterator[Any]:
    """Pulih's service side, connected as the services connect: make_broker with nats_tls."""
    settings = service_settings(tmp_path, server, PULIH_NATS_CA_FILE=certs.regency / "ca.pem")
    broker = make_broker(settings.nats_url, name="tls-test", tls=nats_tls(settings))
    await asyncio.wait_for(broker.connect(), 10)  # it would retry for ever
    await ensure_regency_stream(broker, REGENCY)
    try:
        yield broker
    finally:
        await broker.stop()


async def test_a_clinic_that_trusts_the_regency_ca_reads_and_answers_over_tls(
    server: NatsServer, certs: Certificates, stream_of: Any
) -> None:
    assert stream_of.connection.max_payload == 256 * 1024, "regency.conf's max_payload applies"
    referral = json.dumps({"referral": str(uuid.uuid4())}).encode()
    publish = stream_publisher(stream_of, REGENCY)
    await publish(referral, f"ibm.{REGENCY}.referral.referred_to_clinic.{A}", {"Nats-Msg-Id": "r-1"})

    clinic = await connect_clinic(server, trusting(certs.regency))
    try:
        js = clinic.jetstream()
        sub = await js.pull_subscribe(
            f"ibm.{REGENCY}.referral.*.{A}",
            durable=f"clinic-{A}",
            stream=STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        [received] = await sub.fetch(1, timeout=5)
        assert received.data == referral
        await received.ack()
        ack = await js.publish(f"ibm.{REGENCY}.clinic.{A}.referral_accepted", b"accepted", stream=STREAM)
        assert ack.stream == STREAM and ack.seq == 2

        async with httpx.AsyncClient() as http:
            connections = (await http.get(f"{monitoring(server)}/connz?auth=1")).json()["connections"]
        by_user = {c["authorized_user"]: c for c in connections}
        assert by_user[clinic_users.consumer_name(A)]["tls_version"].startswith("1.")
        assert by_user["pulih"]["tls_version"].startswith("1.")
    finally:
        await clinic.close()


async def test_a_plain_connection_is_refused(server: NatsServer, stream_of: Any) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        info = json.loads((await reader.readline()).decode().split(" ", 1)[1])
        assert info["tls_required"] is True
        connect = {"user": "pulih", "pass": SERVICE_PASSWORD, "verbose": False, "pedantic": False}
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
    server: NatsServer, certs: Certificates, trust: str
) -> None:
    tls = ssl.create_default_context() if trust == "system CAs" else trusting(certs.stranger_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect_clinic(server, tls)


async def test_with_verify_on_a_client_needs_a_certificate_from_the_regency_ca(
    tmp_path: Path, certs: Certificates
) -> None:
    server = regency_server(tmp_path / "nats", certs, verify=True).start()
    try:
        service_cert = tmp_path / "service-cert"
        certificates.issue_client(service_cert, certs.regency_ca, "pulih")
        settings = service_settings(
            tmp_path,
            server,
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
                clinic = await connect_clinic(server, refused)
                await clinic.flush(timeout=2)  # TLS 1.3: a refused certificate shows after the handshake

            async def logged(reason: str = reason) -> bool:
                return reason in server.log_file.read_text()

            await eventually(logged)
        clinic_cert = tmp_path / "clinic-cert"
        certificates.issue_client(clinic_cert, certs.regency_ca, clinic_users.consumer_name(A))
        clinic = await connect_clinic(server, trusting(certs.regency, client=clinic_cert))
        await clinic.flush(timeout=2)
        await clinic.close()
    finally:
        server.stop()


def test_settings_take_a_client_certificate_only_with_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_NATS_KEY_FILE"):
        Settings(PULIH_NATS_CERT_FILE=tmp_path / "client.pem")
    assert nats_tls(Settings()) is None, "no TLS settings: nats-py's defaults"


def nats_server_test(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)


def test_the_deploy_configs_are_valid_with_their_certificates(tmp_path: Path, certs: Certificates) -> None:
    regency = deploy_conf("regency.conf", certs.regency).replace(
        '# include "leaf.conf"', 'include "leaf.conf"'
    )
    assert 'include "leaf.conf"' in regency
    (tmp_path / "regency.conf").write_text(regency)
    (tmp_path / "leaf.conf").write_text(deploy_conf("leaf.conf", certs.regency, leaf=certs.leaf))
    (tmp_path / "users.conf").write_text(secured_nats(tmp_path).extra_config)  # what deploy generates
    (tmp_path / "hub.conf").write_text(deploy_conf("hub.conf", certs.hub))
    for name in ("regency.conf", "hub.conf"):
        checked = nats_server_test(tmp_path / name)
        assert checked.returncode == 0, name + checked.stdout + checked.stderr
    # Without its certificates the regency's server does not start: its clients never go plain.
    (tmp_path / "regency.conf").write_text(regency.replace(str(certs.regency), str(tmp_path / "missing")))
    checked = nats_server_test(tmp_path / "regency.conf")
    assert checked.returncode != 0 and "server.pem" in checked.stdout + checked.stderr


def hub_and_leaf(
    tmp_path: Path, hub_tls: Path, leaf_tls: Path, *, leaf_certificate: bool = True
) -> tuple[NatsServer, NatsServer]:
    """The hub with deploy's leafnode listener and its files in ``hub_tls``, and a regency
    linking to it with deploy's leaf.conf and its files in ``leaf_tls`` (without cert_file and
    key_file unless ``leaf_certificate``)."""
    leaf_port = free_port()
    hub_leafnodes = block(deploy_conf("hub.conf", hub_tls), "leafnodes").replace(
        "listen: 0.0.0.0:7422", f"listen: 127.0.0.1:{leaf_port}"
    )
    assert f"127.0.0.1:{leaf_port}" in hub_leafnodes
    hub = NatsServer(
        tmp_path / "hub",
        server_name="hub",
        domain="national",
        extra_config=f"{hub_leafnodes}\nhttp: 127.0.0.1:{free_port()}\n",
    )
    remote = block(deploy_conf("leaf.conf", tmp_path / "unused", leaf=leaf_tls), "leafnodes")
    remote = remote.replace("tls://hub.pulih.example:7422", f"tls://localhost:{leaf_port}")
    if not leaf_certificate:
        remote = re.sub(r"^\s*(cert_file|key_file): .*\n", "", remote, flags=re.MULTILINE)
    regency = secured_nats(tmp_path / "regency")  # the leaf binds the services' account
    regency.extra_config += f"\n{remote}\n"
    return hub, regency


async def leaf_count(hub: NatsServer) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{monitoring(hub)}/leafz")).json()["leafnodes"])


async def test_a_regency_links_to_the_hub_over_tls_with_its_certificate(
    tmp_path: Path, certs: Certificates
) -> None:
    hub, regency = hub_and_leaf(tmp_path, certs.hub, certs.leaf)
    with hub, regency:
        await eventually(lambda: leaf_count(hub), until=lambda n: n == 1)
        national = await nats.connect(hub.url)
        local = await nats.connect(service_url(regency))
        try:
            sub = await national.subscribe(f"ibm.{REGENCY}.reporting.aggregate_reported")
            await national.flush()

            async def crossed() -> bytes | None:
                await local.publish(f"ibm.{REGENCY}.reporting.aggregate_reported", b"aggregate")
                try:
                    return (await sub.next_msg(timeout=0.2)).data
                except nats.errors.TimeoutError:
                    return None

            assert await eventually(crossed) == b"aggregate"
        finally:
            await national.close()
            await local.close()


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
    tmp_path: Path, certs: Certificates, case: str, refused_by: str, reason: str
) -> None:
    hub_tls = certs.impostor_hub if case.startswith("the hub") else certs.hub
    leaf_tls = certs.rogue_leaf if case == "the regency has another CA's certificate" else certs.leaf
    hub, regency = hub_and_leaf(tmp_path, hub_tls, leaf_tls, leaf_certificate="no certificate" not in case)
    refusing = hub if refused_by == "hub" else regency
    with hub, regency:

        async def refusals() -> int:
            return refusing.log_file.read_text().count(reason)

        await eventually(refusals, until=lambda n: n >= 2)  # refused, and refused again on retry
        assert await leaf_count(hub) == 0
