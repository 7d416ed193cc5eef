"""deploy/ checked without a Docker engine, kubectl or systemd running: the image's Dockerfile and
entry point (structure, hadolint, shellcheck, the wheels it builds), compose.yaml (the compose
specification's schema, what runs, in which order, with which settings), the Kubernetes manifests
(built as kustomize would, against Kubernetes' schemas, and what refers to what), every NATS config
(``nats-server -t``), and the systemd units (``systemd-analyze verify``)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_support import (
    DEPLOY,
    K8S,
    PORTS,
    ROOT,
    SERVICES,
    MissingVariable,
    compose_file,
    compose_variables,
    conf_blocks,
    conf_canonical,
    conf_items,
    container_env,
    containers,
    env_file,
    find,
    kustomize,
    leaf_certificate,
    leaf_mount,
    nats_server_test,
    pod_spec,
    with_leaf_mounted,
)

from pulih.kit.federation import names
from pulih.kit.federation.accounts import conf_value, link_account, link_exports
from pulih.kit.federation.render import DEPLOYED_REGENCY_TLS, render_link
from pulih.kit.federation.secrets import Secrets
from pulih.kit.federation.topology import load_federation
from pulih.kit.nats_server import nats_server_binary

DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "container" / "pulih-container"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
REGENCIES = sorted(p.parent.name for p in K8S.glob("r[0-9]*/kustomization.yaml"))


def tool(name: str) -> str:
    """A linter installed beside this Python (requirements-dev.txt) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -r requirements-dev.txt)")
    return found


# --- the image -------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (instruction, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(arguments.split())))
    return stages


def test_the_image_is_multi_stage_slim_non_root_and_checks_its_health() -> None:
    preamble, *stages = dockerfile_stages()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in preamble
    assert len(stages) == 2
    builder, final = stages
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    final_text = "\n".join(f"{i} {a}" for i, a in final)
    # no compiler, package manager or sources in the final stage: only the builder's venv
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install|pip wheel", final_text)
    copies = [a for i, a in final if i == "COPY"]
    assert copies == [
        "--from=builder /opt/pulih /opt/pulih",
        "deploy/container/pulih-container /usr/local/bin/pulih-container",
    ]
    users = [a for i, a in final if i == "USER"]
    assert users == ["10001:10001"]  # numeric, so Kubernetes' runAsNonRoot can check it
    final_instructions = [i for i, _ in final]
    assert final_instructions.index("USER") > max(
        n for n, i in enumerate(final_instructions) if i in ("RUN", "COPY")
    )
    (health,) = [a for i, a in final if i == "HEALTHCHECK"]
    assert health.endswith('CMD ["pulih-container", "health"]')
    assert ("ENTRYPOINT", '["pulih-container"]') in final
    assert "PULIH_ENV=production" in final_text and "PULIH_HTTP_PORT=8000" in final_text
    assert ("EXPOSE", "8000") in final


def test_the_builder_builds_every_package_of_the_workspace() -> None:
    (run,) = [a for i, a in dockerfile_stages()[1] if i == "RUN"]
    built = re.search(r"pip wheel --wheel-dir /wheels (.*?) &&", run)
    assert built is not None
    workspace = sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/pyproject.toml"))
    workspace += sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("services/*/pyproject.toml"))
    assert sorted(p.removeprefix("./") for p in built.group(1).split()) == sorted(workspace)
    assert "--no-index --find-links /wheels" in run  # the venv installs only those wheels


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the root) out of the build context."""
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, "**/" + pattern) for p in prefixes) or (
            pattern.startswith("**/") and any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        ):
            ignored = not negate
    return ignored


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_more() -> None:
    sources = [
        a.split()[0] for stage in dockerfile_stages() for i, a in stage if i == "COPY" and "--from" not in a
    ]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source.rstrip("/")), f"{source} is left out of the build context"
    for kept_out in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "kit/tests/conftest.py",
        ".pulih/x.db",
    ):
        assert dockerignored(kept_out), kept_out
    assert dockerignored("services/outreach/tests/test_x.py")
    assert not dockerignored("services/reporting/src/pulih/reporting/static/dashboard.css")


def test_hadolint_and_shellcheck_find_nothing() -> None:
    hadolint = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert hadolint.returncode == 0, hadolint.stdout + hadolint.stderr
    shellcheck = subprocess.run([tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True)
    assert shellcheck.returncode == 0, shellcheck.stdout + shellcheck.stderr


def test_the_entry_point_serves_the_four_services_and_refuses_others() -> None:
    text = ENTRYPOINT.read_text()
    case = re.search(r"^\s*(outreach \| .*?)\)\s*;;", text, re.M)
    assert case is not None
    assert tuple(name.strip() for name in case.group(1).split("|")) == SERVICES
    unknown = subprocess.run([str(ENTRYPOINT), "serve", "nosuch"], capture_output=True, text=True)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "pulih-container: unknown service 'nosuch' (outreach, rehab, referral or reporting)"
    )
    usage = subprocess.run([str(ENTRYPOINT), "help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "serve <outreach|rehab|referral|reporting>" in usage.stderr


@pytest.mark.slow
def test_the_workspace_builds_into_wheels_as_the_image_builds_them(tmp_path: Path) -> None:
    """The builder's ``pip wheel`` (without the dependencies, which come from PyPI): every
    package builds, and the wheels hold the files the services read at run time."""
    packages = ["contracts", "kit", *(f"services/{s}" for s in SERVICES)]
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(tmp_path), *(str(ROOT / p) for p in packages)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    names: dict[str, set[str]] = {}
    for wheel in tmp_path.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            names[wheel.name.split("-")[0]] = set(archive.namelist())
    assert sorted(names) == sorted(["pulih_contracts", "pulih_kit"] + [f"pulih_{s}" for s in SERVICES])
    for service in SERVICES:
        files_ = names[f"pulih_{service}"]
        assert f"pulih/{service}/migrations/env.py" in files_
        assert any(f.startswith(f"pulih/{service}/migrations/versions/") for f in files_)
        assert "pulih/__init__.py" not in files_  # pulih stays a namespace package
    assert "pulih/reporting/static/dashboard.css" in names["pulih_reporting"]
    assert "pulih/kit/programmes/ibm-16w-2021.toml" in names["pulih_kit"]
    assert "pulih/kit/migrate.py" in names["pulih_kit"]


# --- compose ---------------------------------------------------------------------------------


def compose_env() -> dict[str, str]:
    return env_file(DEPLOY / "env.example")


def test_compose_follows_the_compose_specification() -> None:
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    jsonschema.validate(compose_file(compose_env()), schema)


def test_compose_needs_its_secrets_and_env_example_names_every_variable() -> None:
    used = compose_variables((DEPLOY / "compose.yaml").read_text())
    example = env_file(DEPLOY / "env.example", fill=False)
    assert used == set(example), "compose.yaml and env.example name different variables"
    secrets_ = {
        "PULIH_MASTER_KEY",
        "POSTGRES_PASSWORD",
        "NATS_PASSWORD",
        "KEYCLOAK_ADMIN_PASSWORD",
        "PULIH_REFERRAL_CLIENT_SECRET",
        "PULIH_SSO_URL",  # not a secret, but only the operator knows it
    }
    assert {k for k, v in example.items() if not v} == secrets_  # filled in by the operator
    for secret in secrets_:
        with pytest.raises(MissingVariable, match=secret):
            compose_file({k: v for k, v in compose_env().items() if k != secret})


def test_compose_runs_a_regency() -> None:
    env = compose_env()
    services = compose_file(env)["services"]
    assert set(services) == {"nats", "postgres", "migrate", "keycloak-db", "keycloak", *SERVICES}

    nats = services["nats"]
    assert nats["command"] == ["-c", "/etc/nats/nats.conf"]
    assert "./compose/nats.conf:/etc/nats/nats.conf:ro" in nats["volumes"]
    assert any(v.startswith("nats-data:") for v in nats["volumes"])
    assert "healthz" in " ".join(nats["healthcheck"]["test"])
    assert nats["environment"]["NATS_PASSWORD"] == env["NATS_PASSWORD"]
    postgres = services["postgres"]
    assert postgres["healthcheck"]["test"][1] == "pg_isready"
    assert postgres["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]

    migrate = services["migrate"]
    assert migrate["command"] == ["migrate", "--schema-per-service", *SERVICES]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    database = f"postgresql://pulih:{env['POSTGRES_PASSWORD']}@postgres:5432/pulih"
    assert migrate["environment"]["DATABASE_URL"] == database

    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["image"] == migrate["image"] == env["PULIH_IMAGE"]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "nats": {"condition": "service_healthy"},
        }
        assert "healthcheck" not in service  # the image's: /readyz
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["restart"] == "unless-stopped"
        settings = service["environment"]
        assert settings["PULIH_ENV"] == "production"
        assert settings["PULIH_REGENCY"] == env["PULIH_REGENCY"]
        assert "PULIH_JWT_SECRET" not in settings  # production signs no token
        assert settings["PULIH_OIDC_ISSUER"] == f"{env['PULIH_SSO_URL']}/realms/pulih"
        assert settings["PULIH_OIDC_AUDIENCE"] == "pulih"
        assert settings["PULIH_JWKS_URL"] == f"{KEYCLOAK}/realms/pulih/protocol/openid-connect/certs"
        calls_others = name == "referral"  # the one service with a service_bearer
        assert ("PULIH_OIDC_CLIENT_SECRET" in settings) is calls_others, name
        if calls_others:
            assert settings["PULIH_OIDC_CLIENT_ID"] == "pulih-referral"
            assert settings["PULIH_OIDC_CLIENT_SECRET"] == env["PULIH_REFERRAL_CLIENT_SECRET"]
            assert (
                settings["PULIH_OIDC_TOKEN_URL"] == f"{KEYCLOAK}/realms/pulih/protocol/openid-connect/token"
            )
        assert settings["PULIH_MASTER_KEY"] == env["PULIH_MASTER_KEY"]
        assert settings["NATS_URL"] == f"nats://pulih:{env['NATS_PASSWORD']}@nats:4222"
        assert settings["DATABASE_URL"] == f"{database}?search_path={name}"
        assert settings["PULIH_OUTREACH_URL"] == "http://outreach:8000"
        assert service["ports"] == [f"{env['PULIH_BIND']}:{PORTS[name]}:8000"]


KEYCLOAK = "http://keycloak:8080"
"""Keycloak as the services reach it inside compose's network."""


def test_compose_runs_keycloak_with_the_realm_as_the_services_issuer() -> None:
    env = compose_env()
    services = compose_file(env)["services"]
    keycloak = services["keycloak"]
    assert keycloak["image"].startswith("quay.io/keycloak/keycloak:")
    assert keycloak["command"] == ["start", "--import-realm"]  # production mode
    assert "./keycloak/pulih-realm.json:/opt/keycloak/data/import/pulih-realm.json:ro" in keycloak["volumes"]
    assert (DEPLOY / "keycloak" / "pulih-realm.json").exists()
    settings = keycloak["environment"]
    assert settings["KC_HOSTNAME"] == env["PULIH_SSO_URL"]  # so every token's iss is the issuer below
    assert (
        services["outreach"]["environment"]["PULIH_OIDC_ISSUER"] == f"{settings['KC_HOSTNAME']}/realms/pulih"
    )
    assert settings["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
    assert settings["KC_DB_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert settings["KC_BOOTSTRAP_ADMIN_PASSWORD"] == env["KEYCLOAK_ADMIN_PASSWORD"]
    assert keycloak["depends_on"] == {"keycloak-db": {"condition": "service_completed_successfully"}}
    assert services["keycloak-db"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "createdb keycloak" in " ".join(services["keycloak-db"]["command"])
    # the realm's placeholders are what the container gives it, referral's secret what referral sends
    realm = json.loads((DEPLOY / "keycloak" / "pulih-realm.json").read_text())
    placeholders = set(re.findall(r"\$\{([A-Z_]+)(?::[^}]*)?\}", json.dumps(realm)))
    assert placeholders == {"PULIH_REFERRAL_CLIENT_SECRET", "PULIH_REGENCY"}
    assert placeholders <= set(settings)
    [referral] = [c for c in realm["clients"] if c["clientId"] == "pulih-referral"]
    assert referral["secret"] == "${PULIH_REFERRAL_CLIENT_SECRET}"
    assert (
        settings["PULIH_REFERRAL_CLIENT_SECRET"]
        == services["referral"]["environment"]["PULIH_OIDC_CLIENT_SECRET"]
    )
    assert all(c.get("secret") in (None, referral["secret"]) for c in realm["clients"])  # none guessable
    assert keycloak["ports"] == [f"{env['PULIH_BIND']}:8180:8080"]
    assert "/health/ready" in " ".join(keycloak["healthcheck"]["test"])


def test_no_deploy_artifact_sets_a_jwt_secret_and_every_service_gets_an_issuer() -> None:
    """Production verifies the provider's tokens: a signing secret anywhere in deploy/ would let
    whoever holds it mint any token (the README may name it, to say so)."""
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.suffix != ".md":
            assert "PULIH_JWT_SECRET" not in path.read_text(errors="replace"), path
    compose = compose_file(compose_env())["services"]
    systemd = env_file(SYSTEMD / "pulih.env.example", fill=False)
    for name in SERVICES:
        assert compose[name]["environment"]["PULIH_OIDC_ISSUER"].startswith("https://"), name
        for regency in REGENCIES:
            docs = kustomize(K8S / regency)
            (container,) = pod_spec(find(docs, "Deployment", name))["containers"]  # type: ignore[index]
            env = container_env(docs, container)
            assert env["PULIH_OIDC_ISSUER"].startswith("https://"), (regency, name)
            assert env["PULIH_OIDC_AUDIENCE"] == "pulih"
        assert systemd["PULIH_OIDC_ISSUER"].startswith("https://")
    assert env_file(SYSTEMD / "referral.env", fill=False).keys() >= {
        "PULIH_OIDC_CLIENT_ID",
        "PULIH_OIDC_CLIENT_SECRET",
    }


def compose_cli() -> list[str]:
    """``docker compose`` (v2) or Debian's ``docker-compose`` (1.29, which .ci/run installs):
    their ``config`` needs no engine."""
    docker = shutil.which("docker")
    if (
        docker is not None
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip("no compose CLI here (apt-get install docker-compose); the schema check stands")
    return [legacy]


def test_compose_itself_reads_it_as_this_test_does(tmp_path: Path) -> None:
    values = compose_env()
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in values.items()))

    def config(env_file_: Path) -> subprocess.CompletedProcess[str]:
        command = [*compose_cli(), "--env-file", str(env_file_), "-f", str(DEPLOY / "compose.yaml"), "config"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    read = config(env)
    assert read.returncode == 0, read.stderr
    theirs = yaml.safe_load(read.stdout)["services"]
    ours = compose_file(values)["services"]
    assert set(theirs) == set(ours)
    for name, service in ours.items():
        for key in ("command", "environment", "depends_on", "image", "restart"):
            assert theirs[name].get(key) == service.get(key), f"{name}: {key}"
    (tmp_path / "no-secret.env").write_text(
        "".join(f"{k}={v}\n" for k, v in values.items() if k != "PULIH_MASTER_KEY")
    )
    refused = config(tmp_path / "no-secret.env")
    assert refused.returncode != 0 and "set PULIH_MASTER_KEY in deploy/.env" in refused.stderr


# --- NATS configs ----------------------------------------------------------------------------


def test_the_compose_nats_config_passes_nats_server_t() -> None:
    env = compose_file(compose_env())["services"]["nats"]["environment"]
    checked = nats_server_test(DEPLOY / "compose" / "nats.conf", env)
    assert checked.returncode == 0, checked.stderr
    text = (DEPLOY / "compose" / "nats.conf").read_text()
    assert re.search(r"^\s*sync_interval: always$", text, re.M)
    assert re.search(r"^\s*store_dir: /data$", text, re.M)
    missing = nats_server_test(
        DEPLOY / "compose" / "nats.conf", {k: v for k, v in env.items() if k != "NATS_PASSWORD"}
    )
    assert missing.returncode != 0 and "NATS_PASSWORD" in missing.stdout + missing.stderr


def nats_node_env(docs: list[dict[str, Any]], node: int) -> dict[str, str]:
    statefulset = find(docs, "StatefulSet", "nats")
    (container,) = containers(statefulset)
    return container_env(docs, container, pod_name=f"nats-{node}")


def test_the_kubernetes_nats_config_passes_nats_server_t_on_every_node(tmp_path: Path) -> None:
    docs = kustomize(K8S / "nats")
    config = tmp_path / "nats.conf"
    # with the Secret nats-leaf-tls's files where the pod mounts them
    text = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    config.write_text(with_leaf_mounted(text, docs, leaf_certificate(tmp_path)))
    for node in range(3):
        env = nats_node_env(docs, node)
        assert env["POD_NAME"] == f"nats-{node}"
        checked = nats_server_test(config, env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    env = nats_node_env(docs, 0)
    for regency in REGENCIES:  # a link without its URL is refused, not dropped
        link = f"PULIH_{regency.removeprefix('r')}_HUB_LINK"
        missing = nats_server_test(config, {k: v for k, v in env.items() if k != link})
        assert missing.returncode != 0 and link in missing.stdout + missing.stderr
    unmounted = tmp_path / "unmounted.conf"
    unmounted.write_text(text.replace(leaf_mount(docs), str(tmp_path / "no-such-secret")))
    refused = nats_server_test(unmounted, env)
    assert refused.returncode != 0 and "client.pem" in refused.stdout + refused.stderr


def test_nats_server_t_is_not_a_formality(tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("jetstream {\n  store_dir: /data\n  sync_interval: sometimes\n}\n")
    assert nats_server_test(broken, {}).returncode != 0
    assert Path(nats_server_binary()).exists()


# --- Kubernetes ------------------------------------------------------------------------------


def all_manifests() -> list[tuple[str, list[dict[str, Any]]]]:
    return [("nats", kustomize(K8S / "nats")), *((r, kustomize(K8S / r)) for r in REGENCIES)]


def test_kubernetes_manifests_follow_kubernetes_schemas() -> None:
    assert REGENCIES, "no regency overlay in deploy/k8s"
    for _, docs in all_manifests():
        for doc in docs:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_is_not_a_formality() -> None:
    docs = kustomize(K8S / REGENCIES[0])
    deployment = find(docs, "Deployment", "outreach")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_the_nats_cluster_has_three_nodes_and_an_account_per_regency() -> None:
    docs = kustomize(K8S / "nats")
    statefulset = find(docs, "StatefulSet", "nats")
    assert statefulset["spec"]["replicas"] == 3
    headless = find(docs, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    (template,) = statefulset["spec"]["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "data"
    routes = [nats_node_env(docs, 0)[f"ROUTE_{n}"] for n in (1, 2, 3)]
    assert [r.rsplit("@", 1)[1] for r in routes] == [
        f"nats-{n}.{headless['metadata']['name']}:6222" for n in range(3)
    ]
    spread = pod_spec(statefulset)["topologySpreadConstraints"]  # type: ignore[index]
    assert (
        spread[0]["topologyKey"] == "kubernetes.io/hostname"
        and spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
    )
    assert find(docs, "PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1
    config = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert re.search(r"^\s*sync_interval: always$", config, re.M)
    node_env = nats_node_env(docs, 0)
    for regency in REGENCIES:
        code = regency.removeprefix("r")
        user = find(kustomize(K8S / regency), "ConfigMap", "pulih-regency")["data"]["NATS_USER"]
        account = re.search(rf"R{code} \{{(.*?)\n  \}}", config, re.S)
        assert account is not None, f"nats.conf has no account R{code}"
        assert "jetstream: enabled" in account.group(1)
        assert f"user: {user}, password: $PULIH_{code}_NATS_PASSWORD" in account.group(1)
        assert f"PULIH_{code}_NATS_PASSWORD" in node_env


def in_province(code: str, value: object) -> object:
    """A rendered regency's accounts ``value`` with the province cluster's names: its services'
    account ``PULIH`` is ``R<code>`` there, its link's ``LINK`` is ``LINK_<code>``."""
    text = json.dumps(value)
    for rendered, province in ((names.SERVICE_ACCOUNT, f"R{code}"), (names.LINK_ACCOUNT, f"LINK_{code}")):
        text = text.replace(f'"{rendered}"', f'"{province}"')
    return json.loads(text)


def test_every_regency_links_to_the_hub_as_a_rendered_link_does(tmp_path: Path) -> None:
    """Each regency's leaf remote on the province's cluster is the remote ``pulih federation
    render`` writes into a regency's ``link.conf`` (URL, TLS files), bound to an account
    ``LINK_<code>`` with the rules of a rendered ``LINK``: the same mapping and imports, from the
    regency's account ``R<code>`` instead of ``PULIH``, which exports exactly those to it."""
    docs = kustomize(K8S / "nats")
    config = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    statefulset = find(docs, "StatefulSet", "nats")
    (volume,) = [v for v in pod_spec(statefulset)["volumes"] if v["name"] == "leaf-tls"]  # type: ignore[index]
    assert volume["secret"]["secretName"] == "nats-leaf-tls"
    assert DEPLOYED_REGENCY_TLS.link is not None
    assert leaf_mount(docs) == str(Path(DEPLOYED_REGENCY_TLS.link.cert_file).parent)
    hub_leaf = find(docs, "ConfigMap", "nats-federation")["data"]["PULIH_HUB_LEAF"]
    fed = load_federation(DEPLOY / "federation.toml")
    assert hub_leaf == f"{fed.hub.host}:{fed.hub.leaf_port}"  # the example values agree
    node_env = nats_node_env(docs, 0)
    (remotes,) = conf_blocks(config, "remotes:")
    remotes_by_url = {re.findall(r"\$(\w+)", r)[0]: r for r in conf_items(remotes)}
    assert sorted(remotes_by_url) == sorted(f"PULIH_{r.removeprefix('r')}_HUB_LINK" for r in REGENCIES)
    for regency in REGENCIES:
        code = regency.removeprefix("r")
        link_url = node_env[f"PULIH_{code}_HUB_LINK"]
        secrets_ = Secrets(
            tmp_path / "secrets.json", {f"regency.{code}.link": node_env[f"PULIH_{code}_LINK_PASSWORD"]}
        )
        rendered = render_link(
            fed.with_regencies([code]), code, secrets_, hub_leaf_urls=[hub_leaf], tls=DEPLOYED_REGENCY_TLS
        )
        (rendered_remote,) = conf_items(conf_blocks(rendered, "remotes =")[0])
        ours = remotes_by_url[f"PULIH_{code}_HUB_LINK"].replace(f"$PULIH_{code}_HUB_LINK", link_url)
        assert conf_canonical(ours.replace(f"LINK_{code}", names.LINK_ACCOUNT)) == conf_canonical(
            rendered_remote
        )

        (link,) = conf_blocks(config, f"LINK_{code}")  # the account; the remote has it as a value
        assert conf_canonical(link) == conf_canonical(conf_value(in_province(code, link_account(code))))
        (account,) = conf_blocks(config, f"R{code}")
        (exports,) = conf_blocks(account, "exports:")
        assert conf_canonical(exports) == conf_canonical(conf_value(in_province(code, link_exports(code))))
        assert "jetstream" not in link and "users" not in link
    readme = (DEPLOY / "README.md").read_text()  # what the operator sets is documented
    for value in ("PULIH_HUB_LEAF", "PULIH_<code>_LINK_PASSWORD", "nats-leaf-tls", leaf_mount(docs)):
        assert value in readme, value


def test_every_regency_runs_its_services_with_probes_resources_and_secrets() -> None:
    nats_docs = kustomize(K8S / "nats")
    nats_service = find(nats_docs, "Service", "nats")
    for regency in REGENCIES:
        code = regency.removeprefix("r")
        docs = kustomize(K8S / regency)
        namespace = f"pulih-{code}"
        assert find(docs, "Namespace", namespace)
        regency_settings = find(docs, "ConfigMap", "pulih-regency")["data"]
        assert regency_settings["PULIH_REGENCY"] == code
        settings = find(docs, "ConfigMap", "pulih-settings")["data"]
        assert settings["PULIH_ENV"] == "production"
        assert (
            int(settings["PULIH_STREAM_REPLICAS"])
            == find(nats_docs, "StatefulSet", "nats")["spec"]["replicas"]
        )
        nats_namespace = nats_service["metadata"]["namespace"]
        assert settings["NATS_HOST"] == f"nats.{nats_namespace}.svc.cluster.local:4222"
        assert settings["PULIH_OUTREACH_URL"] == f"http://outreach:{PORTS['outreach']}"
        for name in SERVICES:
            deployment = find(docs, "Deployment", name)
            assert deployment["metadata"]["namespace"] == namespace
            spec = pod_spec(deployment)
            assert spec is not None
            assert (
                deployment["spec"]["selector"]["matchLabels"].items()
                <= deployment["spec"]["template"]["metadata"]["labels"].items()
            )
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["runAsUser"] == 10001
            assert spec["automountServiceAccountToken"] is False
            (migrate,) = spec["initContainers"]
            assert migrate["args"] == ["migrate", name]
            (container,) = spec["containers"]
            assert container["args"] == ["serve", name]
            for each in (migrate, container):
                assert each["image"] == "registry.example.org/pulih:1.0.0"
                assert each["securityContext"]["readOnlyRootFilesystem"] is True
                assert each["securityContext"]["allowPrivilegeEscalation"] is False
                assert each["resources"]["requests"]["cpu"] and each["resources"]["requests"]["memory"]
                assert each["resources"]["limits"]["memory"]
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            assert container["ports"] == [{"name": "http", "containerPort": 8000}]
            env = container_env(docs, container)
            assert env["DATABASE_URL"] == container_env(docs, migrate)["DATABASE_URL"]
            assert env["DATABASE_URL"].endswith(f"?search_path={name}")
            password = env["NATS_PASSWORD"]
            assert env["NATS_URL"] == f"nats://pulih-{code}:{password}@{settings['NATS_HOST']}"
            assert env["PULIH_MASTER_KEY"] and "PULIH_JWT_SECRET" not in env
            assert env["PULIH_OIDC_ISSUER"] == f"https://sso.example.go.id/realms/pulih-{code}"
            secret_keys = {
                v["valueFrom"]["secretKeyRef"]["key"]
                for v in container["env"]
                if "secretKeyRef" in v.get("valueFrom", {})
            }
            assert "PULIH_MASTER_KEY" in secret_keys
            if name == "referral":  # the one service that calls another, with its own client
                assert "PULIH_REFERRAL_CLIENT_SECRET" in secret_keys
                assert env["PULIH_OIDC_CLIENT_ID"] == "pulih-referral" and env["PULIH_OIDC_CLIENT_SECRET"]
            service = find(docs, "Service", name)
            assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
            assert service["spec"]["ports"] == [{"name": "http", "port": PORTS[name], "targetPort": "http"}]
            if deployment["spec"]["replicas"] > 1:
                budget = find(docs, "PodDisruptionBudget", name)
                assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_a_reference_to_a_missing_key_fails_the_build() -> None:
    docs = kustomize(K8S / REGENCIES[0])
    (container,) = pod_spec(find(docs, "Deployment", "rehab"))["containers"]  # type: ignore[index]
    container["env"].append({"name": "X", "value": "$(NOT_DEFINED)"})
    with pytest.raises(AssertionError, match="NOT_DEFINED"):
        container_env(docs, container)


# --- systemd ---------------------------------------------------------------------------------

SYSTEMD = DEPLOY / "systemd"
UNITS = ("pulih-nats.service", "pulih@.service", "pulih.target")


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    venv_bin = str(Path(sys.executable).parent)  # where /opt/pulih/bin's programs are here
    for unit in UNITS:
        (tmp_path / unit).write_text((SYSTEMD / unit).read_text().replace("/opt/pulih/bin", venv_bin))
    instances = [f"pulih@{s}.service" for s in SERVICES]
    for instance in instances:
        (tmp_path / instance).symlink_to("pulih@.service")
    verify = subprocess.run(
        [analyze, "verify", "--man=no", "pulih-nats.service", "pulih.target", *instances],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # it runs outside a booted systemd here: only its complaints about the host are not ours
    complaints = [
        line
        for line in (verify.stdout + verify.stderr).splitlines()
        if line.strip() and "systemd-temporary" not in line and "Failed to connect to bus" not in line
    ]
    assert verify.returncode == 0 and not complaints, "\n".join(complaints)


def unit_settings(unit: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_units_run_unprivileged_and_hardened() -> None:
    for unit, user, writes in (
        ("pulih-nats.service", "nats", "/var/lib/pulih/nats"),
        ("pulih@.service", "pulih", "/var/lib/pulih/data"),
    ):
        settings = unit_settings(unit)
        assert settings["User"] == [user] and settings["Group"] == [user]
        for key, value in {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "RestrictSUIDSGID": "yes",
            "CapabilityBoundingSet": "",
            "ReadWritePaths": writes,
            "ReadOnlyPaths": "/etc/pulih",
        }.items():
            assert settings.get(key) == [value], f"{unit}: {key}"
        assert settings["StateDirectory"] == [writes.removeprefix("/var/lib/")]
    sysusers = (SYSTEMD / "pulih.sysusers").read_text()
    assert re.search(r"^u pulih ", sysusers, re.M) and re.search(r"^u nats ", sysusers, re.M)
    service = unit_settings("pulih@.service")
    assert service["EnvironmentFile"] == ["/etc/pulih/pulih.env", "/etc/pulih/%i.env"]
    assert service["ExecStartPre"] == ["/opt/pulih/bin/python -m pulih.kit.migrate %i"]
    assert service["ExecStart"][0].startswith(
        "/opt/pulih/bin/uvicorn pulih.%i.app:app --host 127.0.0.1 --port ${PULIH_HTTP_PORT}"
    )
    target = unit_settings("pulih.target")
    assert target["Wants"] == ["pulih-nats.service " + " ".join(f"pulih@{s}.service" for s in SERVICES)]
    environment = env_file(SYSTEMD / "pulih.env.example", fill=False)
    assert environment["PULIH_ENV"] == "production"
    assert {"PULIH_OIDC_ISSUER", "PULIH_MASTER_KEY", "NATS_URL", "PULIH_REGENCY"} <= set(environment)
    assert "PULIH_JWT_SECRET" not in environment


def test_the_deployments_agree_on_each_services_port() -> None:
    for name in SERVICES:
        assert env_file(SYSTEMD / f"{name}.env")["PULIH_HTTP_PORT"] == str(PORTS[name])
    assert (
        env_file(SYSTEMD / "pulih.env.example")["PULIH_OUTREACH_URL"]
        == f"http://127.0.0.1:{PORTS['outreach']}"
    )
    for name, port in PORTS.items():
        spec = re.search(
            r"port=(\d+)", (ROOT / "services" / name / "src" / "pulih" / name / "app.py").read_text()
        )
        assert spec is not None and int(spec.group(1)) == port, f"{name}'s ServiceSpec port"
