"""The federation list and what is rendered from it: the list is checked with clear errors, the
configs are the same each time, each regency's files speak of its own code only, adding a
regency adds a source and a user and changes no other regency's files, and nats-server accepts
every rendered file (plain, TLS, one hub server or three)."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import nats
import pytest
from referral_regency import deploy_module

from pulih.kit.federation import names
from pulih.kit.federation.accounts import hub_accounts
from pulih.kit.federation.national_stream import (
    declare_national_streams,
    merged_sources,
    national_stream_config,
)
from pulih.kit.federation.render import (
    RegencyTls,
    TlsFiles,
    render_hub,
    render_link,
    render_regency,
    write_files,
)
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import (
    Federation,
    FederationError,
    Hub,
    HubNode,
    load_federation,
    parse_federation,
)
from pulih.kit.nats_server import NatsServer, nats_server_binary

ROOT = Path(__file__).resolve().parents[1]
FEDERATION_FILE = ROOT / "deploy" / "federation.toml"
CODES_IN_TEXT = re.compile(r"(?:\br|IBM_|ibm\.|regency )([0-9]{4})\b")


@pytest.fixture
def fed() -> Federation:
    return load_federation(FEDERATION_FILE)


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return Secrets.load_or_create(tmp_path / "secrets.json")


def nats_server_accepts(config: Path) -> None:
    checked = subprocess.run([nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, f"{config.name}: {checked.stdout}{checked.stderr}"


def test_the_deploy_list_names_real_regencies_with_their_provinces(fed: Federation) -> None:
    assert {"3301", "3302", "7471"} <= set(fed.codes)
    assert fed.regency("3301").name == "Cilacap"
    assert fed.regency("3302").province_name == "Jawa Tengah"
    assert fed.regency("7471").name == "Kota Kendari"
    assert fed.regency("7471").province_name == "Sulawesi Tenggara"
    assert all(r.clinics for r in fed.regencies)
    assert len(names.PROVINCES) == 38


@pytest.mark.parametrize(
    ("regencies", "message"),
    [
        ([{"code": "330", "name": "x"}], "four digits"),
        ([{"code": 3301, "name": "x"}], 'code = "3301"'),
        ([{"code": "9901", "name": "x"}], "no province has the code 99"),
        ([{"code": "3301", "name": "a"}, {"code": "3301", "name": "b"}], "3301 is listed twice"),
        ([{"code": "3301", "name": ""}], "name must be"),
        ([{"code": "3301", "name": "x", "clinics": ["Klinik A"]}], "slug"),
        ([{"code": "3301", "name": "x", "clinics": ["a", "a"]}], "listed twice"),
        ([{"code": "3301", "name": "x", "kode": "1"}], "unknown key"),
    ],
)
def test_a_wrong_list_is_refused_with_a_clear_error(regencies: list[dict[str, object]], message: str) -> None:
    with pytest.raises(FederationError, match=re.escape(message)):
        parse_federation({"regencies": regencies})


def test_a_hub_cluster_has_three_nodes(tmp_path: Path) -> None:
    two = {"hub": {"nodes": [{"name": f"hub-{i}", "host": f"h{i}"} for i in (1, 2)]}}
    with pytest.raises(FederationError, match="three nodes"):
        parse_federation(two)
    path = tmp_path / "federation.toml"
    path.write_text('[hub]\nhost = "hub"\n[[regencies]]\ncode = "3301"\nname = "Cilacap"\nclinics = [1]\n')
    with pytest.raises(FederationError, match=str(path)):
        load_federation(path)


def test_secrets_are_kept_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = Secrets.load_or_create(path)
    link = first.link("3301")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Secrets.load_or_create(path)
    assert again.link("3301") == link
    assert len({link, again.service("3301"), again.link("3302"), again.national(), again.hub_admin()}) == 5


def test_rendering_is_the_same_every_time(fed: Federation, secrets: Secrets, tmp_path: Path) -> None:
    first = render_regency(fed, "3301", secrets, store_dir="/var/lib/pulih/nats")
    hub = render_hub(fed, secrets)
    again = Secrets.load_or_create(secrets.path)  # the passwords the first rendering saved
    assert render_regency(fed, "3301", again, store_dir="/var/lib/pulih/nats") == first
    assert render_hub(fed, again) == hub
    assert set(first) == {"nats.conf", "accounts.conf", "link.conf"}


def test_each_regencys_files_name_its_own_code_only(fed: Federation, secrets: Secrets) -> None:
    for regency in fed.regencies:
        files = render_regency(fed, regency.code, secrets)
        for name, text in files.items():
            assert set(CODES_IN_TEXT.findall(text)) == {regency.code}, (regency.code, name)
        for other in fed.regencies:
            if other.code != regency.code:
                assert secrets.link(other.code) not in "".join(files.values())
        for clinic in regency.clinics:
            assert f'"clinic-{clinic}"' in files["accounts.conf"]


def test_adding_a_regency_adds_a_source_and_a_user_and_changes_no_other_regency(
    fed: Federation, secrets: Secrets
) -> None:
    before = fed.with_regencies(["3301", "3302"])
    after = fed.with_regencies(["3301", "3302", "7471"])
    assert render_regency(before, "3301", secrets) == render_regency(after, "3301", secrets)
    hub_before, hub_after = render_hub(before, secrets)["hub.conf"], render_hub(after, secrets)["hub.conf"]
    assert '"user": "r7471"' not in hub_before and '"user": "r7471"' in hub_after
    assert hub_after.count('"user": "r') == hub_before.count('"user": "r') + 1
    assert '"R7471": {' not in hub_before and '"R7471": {' in hub_after
    assert hub_after.count('"account": "R7471"') == 3, "NATIONAL imports 7471's three subjects"
    sources = national_stream_config(before.codes).sources or []
    assert [s.name for s in merged_sources(sources, after.codes)] == ["IBM_3301", "IBM_3302", "IBM_7471"]
    assert merged_sources(sources, ["3302"]) == sources, "a source is never dropped"


def test_each_regencys_link_has_a_hub_account_of_its_own(fed: Federation, secrets: Secrets) -> None:
    links = {code: secrets.link(code) for code in fed.codes}
    accounts = hub_accounts(secrets.hub_admin(), secrets.national(), links)
    assert set(accounts) == {names.HUB_ACCOUNT, *(f"R{code}" for code in fed.codes)}
    national = accounts[names.HUB_ACCOUNT]
    assert isinstance(national, dict)
    assert [u["user"] for u in national["users"]] == [names.HUB_ADMIN_USER, names.NATIONAL_USER]
    imported: dict[str, list[str]] = {}
    for entry in national["imports"]:
        ((kind, target),) = entry.items()
        imported.setdefault(target["account"], []).append(f"{kind} {target['subject']}")
    for code in fed.codes:
        own = accounts[names.hub_link_account(code)]
        assert isinstance(own, dict)
        assert "jetstream" not in own and "imports" not in own
        assert own["users"] == [{"user": f"r{code}", "password": secrets.link(code)}], "no permissions"
        exported = [
            f"{kind} {export[kind]}"
            for export in own["exports"]
            for kind in ("service", "stream")
            if kind in export
        ]
        assert all(export["accounts"] == [names.HUB_ACCOUNT] for export in own["exports"])
        assert exported == [
            f"service $JS.r{code}.API.CONSUMER.CREATE.IBM_{code}.*.ibm.{code}.reporting.aggregate_reported",
            f"service $JS.FC.IBM_{code}.>",
            f"stream national.deliver.r{code}.>",
        ]
        assert imported[names.hub_link_account(code)] == exported
        assert set(CODES_IN_TEXT.findall(str(own))) == {code}


def test_nats_server_accepts_every_rendered_file(fed: Federation, secrets: Secrets, tmp_path: Path) -> None:
    for code in ("3301", "7471"):
        directory = tmp_path / names.domain(code)
        write_files(
            directory, render_regency(fed, code, secrets, store_dir=tmp_path / "store", monitor_port=8222)
        )
        nats_server_accepts(directory / "nats.conf")
        write_files(directory, {"link.conf": render_link(fed, code, secrets, up=False)})
        assert "remotes" not in (directory / "link.conf").read_text()
        nats_server_accepts(directory / "nats.conf")
    write_files(tmp_path / "hub", render_hub(fed, secrets, store_dir=tmp_path / "hub-store"))
    nats_server_accepts(tmp_path / "hub" / "hub.conf")


def test_a_three_node_hub_routes_to_the_other_two(fed: Federation, secrets: Secrets, tmp_path: Path) -> None:
    nodes = tuple(HubNode(f"hub-{i}", f"hub-{i}.pulih.example") for i in (1, 2, 3))
    clustered = fed.with_hub(Hub(host="hub.pulih.example", nodes=nodes))
    files = render_hub(clustered, secrets, store_dir=tmp_path / "store")
    assert sorted(files) == ["hub-1.conf", "hub-2.conf", "hub-3.conf"]
    write_files(tmp_path / "hub", files)
    for name, text in files.items():
        me = name.removesuffix(".conf")
        routes = re.findall(r"nats-route://[^@]+@([a-z0-9.-]+):6222", text)
        assert sorted(routes) == sorted(f"{n.name}.pulih.example" for n in nodes if n.name != me)
        assert f'"{tmp_path / "store" / me}"' in text
        nats_server_accepts(tmp_path / "hub" / name)
    links = render_link(clustered, "3301", secrets)
    assert all(f"@hub-{i}.pulih.example:7422" in links for i in (1, 2, 3))
    assert national_stream_config(["3301"], replicas=clustered.hub.replicas).num_replicas == 3


def test_the_tls_configs_are_valid_with_their_certificates(
    fed: Federation, secrets: Secrets, tmp_path: Path
) -> None:
    certificates = deploy_module("deploy/tls/issue_certificates.py", "issue_certificates")
    certificates.issue_ca(tmp_path / "regency-ca", "test regency CA")
    certificates.issue_server(tmp_path / "regency", tmp_path / "regency-ca", ["localhost"])
    certificates.issue_ca(tmp_path / "national-ca", "test national CA")
    certificates.issue_server(tmp_path / "hub-tls", tmp_path / "national-ca", ["localhost"])
    certificates.issue_client(tmp_path / "leaf", tmp_path / "national-ca", "leaf-r3301")

    def files(directory: Path, prefix: str, verify: bool = False) -> TlsFiles:
        d = tmp_path / directory
        return TlsFiles(str(d / f"{prefix}.pem"), str(d / f"{prefix}-key.pem"), str(d / "ca.pem"), verify)

    tls = RegencyTls(clients=files(Path("regency"), "server"), link=files(Path("leaf"), "client"))
    rendered = render_regency(fed, "3301", secrets, store_dir=tmp_path / "store", tls=tls)
    assert "tls://r3301:" in rendered["link.conf"] and "nats-leaf://" not in rendered["link.conf"]
    write_files(tmp_path / "r3301", rendered)
    nats_server_accepts(tmp_path / "r3301" / "nats.conf")
    hub = render_hub(
        fed, secrets, store_dir=tmp_path / "hub-store", tls=files(Path("hub-tls"), "server", True)
    )
    assert "verify" in hub["hub.conf"]
    write_files(tmp_path / "hub", hub)
    nats_server_accepts(tmp_path / "hub" / "hub.conf")


@pytest.mark.system
async def test_declaring_national_adds_sources_and_never_drops_one(tmp_path: Path) -> None:
    with NatsServer(tmp_path / "hub", domain=names.HUB_DOMAIN) as hub:
        nc = await nats.connect(hub.url)
        try:
            js = nc.jetstream()
            first = await declare_national_streams(js, ["3301"])
            assert [s.name for s in first.config.sources or []] == ["IBM_3301"]
            grown = await declare_national_streams(js, ["3301", "3302"])
            assert [s.name for s in grown.config.sources or []] == ["IBM_3301", "IBM_3302"]
            kept = await declare_national_streams(js, ["3302"])
            assert [s.name for s in kept.config.sources or []] == ["IBM_3301", "IBM_3302"]
            source = (kept.config.sources or [])[1]
            assert source.filter_subject == "ibm.3302.reporting.aggregate_reported"
            assert source.external is not None and source.external.api == "$JS.r3302.API"
            assert source.external.deliver == "national.deliver.r3302"
            dlq = await js.stream_info(names.NATIONAL_DLQ_STREAM)
            assert dlq.config.subjects == [names.NATIONAL_DLQ_SUBJECTS]
        finally:
            await nc.close()
