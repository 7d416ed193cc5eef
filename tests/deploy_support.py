"""deploy/ read as the tools that run it would read it, without them (no Docker engine, kubectl or
kustomize on the build machines): compose's variable interpolation, a minimal ``kustomize build``
of what deploy/k8s uses, Kubernetes' ``$(VAR)`` expansion in a container's environment, and the
NATS configs with the variables their containers give them."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from pulih.kit.nats_server import nats_server_binary
from pulih.kit.testing import POSTGRES_URL, postgres_schema_url

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SERVICES = ("outreach", "rehab", "referral", "reporting")
PORTS = {"outreach": 8101, "rehab": 8102, "referral": 8103, "reporting": 8104}
"""Each service's port: `pulih up`'s, the host's in compose.yaml, the Kubernetes Service's, systemd's."""

Doc = dict[str, Any]


def example_value(key: str) -> str:
    """A value for a secret an example file leaves empty, in the form the services want."""
    if key == "PULIH_MASTER_KEY":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if key == "PULIH_SSO_URL":
        return "https://sso.pulih.test"
    return secrets.token_hex(24)


def env_file(path: Path, *, fill: bool = True) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines skipped); empty values filled with
    :func:`example_value` unless ``fill`` is False."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {line!r}"
        values[key] = value or (example_value(key) if fill else "")
    return values


_COMPOSE_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """A ``${VAR:?message}`` of the compose file without its variable."""


def compose_variables(text: str) -> set[str]:
    """The variables a compose file interpolates."""
    return {m.group("name") for m in _COMPOSE_VAR.finditer(text) if m.group("name")}


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation of ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?error}`` and ``$$`` in every string of ``value``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-") and unset_or_empty:
            return str(arg)
        if op in (":?", "?") and unset_or_empty:
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _COMPOSE_VAR.sub(one, value)


def compose_file(env: Mapping[str, str]) -> Doc:
    """deploy/compose.yaml with its anchors merged and its variables interpolated from ``env``."""
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    result: Doc = interpolate(raw, env)
    return result


_KUSTOMIZE_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
}


def kustomize(directory: Path) -> list[Doc]:
    """``kustomize build directory`` for what deploy/k8s uses: resources (files and directories),
    namespace, images, and ConfigMap and Secret generators without name hashes. A Secret's env file
    that an operator has not written yet is read from its ``.example`` with the blanks filled."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _KUSTOMIZE_KEYS
    assert not unknown, f"{directory}: kustomize features this build does not do: {unknown}"
    if "configMapGenerator" in spec or "secretGenerator" in spec:
        assert spec.get("generatorOptions", {}).get("disableNameSuffixHash") is True, directory
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            docs += kustomize(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for generator in spec.get("configMapGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        data |= {Path(f).name: (directory / f).read_text() for f in generator.get("files", [])}
        docs.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    for generator in spec.get("secretGenerator", []):
        values: dict[str, str] = {}
        for name in generator.get("envs", []):
            path = directory / name
            values |= env_file(path if path.exists() else path.with_name(path.name + ".example"))
        data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
        docs.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]}, "data": data}
        )
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        for doc in docs:
            for container in containers(doc):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def pod_spec(doc: Doc) -> Doc | None:
    """The pod template's spec of a Deployment or StatefulSet."""
    if doc["kind"] in ("Deployment", "StatefulSet"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


def containers(doc: Doc) -> list[Doc]:
    """Every container of a workload, init containers first."""
    spec = pod_spec(doc)
    return [] if spec is None else [*spec.get("initContainers", []), *spec["containers"]]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one resource of ``kind`` named ``name``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _quantity(text: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(docs: list[Doc], container: Doc, pod_name: str = "pod-0") -> dict[str, str]:
    """The environment Kubernetes gives ``container``: ``envFrom`` first, then ``env`` in order,
    each ``$(VAR)`` expanded from what is defined before it. A reference to a missing ConfigMap,
    Secret, key or variable fails."""

    def data(kind: str, name: str) -> dict[str, str]:
        doc = find(docs, kind, name)
        if kind == "Secret":
            return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
        return dict(doc.get("data", {}))

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= data("ConfigMap", source["configMapRef"]["name"])
        else:
            env |= data("Secret", source["secretRef"]["name"])
    for var in container.get("env", []):
        if "value" in var:
            missing = [m for m in _K8S_VAR.findall(var["value"]) if m not in env]
            assert not missing, f"{container['name']}: {var['name']} refers to undefined {missing}"
            env[var["name"]] = _K8S_VAR.sub(lambda m: env[m.group(1)], var["value"])
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            values = data("Secret", ref["name"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            values = data("ConfigMap", ref["name"])
        elif "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name", source
            env[var["name"]] = pod_name
            continue
        else:
            resource = source["resourceFieldRef"]["resource"]
            kind, _, what = resource.partition(".")
            env[var["name"]] = str(_quantity(container["resources"][kind][what]))
            continue
        assert ref["key"] in values, f"{container['name']}: {ref['name']} has no key {ref['key']}"
        env[var["name"]] = values[ref["key"]]
    return env


LEAF_TLS_VOLUME = "leaf-tls"
"""The NATS StatefulSet's volume of the Secret with the province's leaf certificate."""


def leaf_mount(docs: list[Doc]) -> str:
    """Where the NATS StatefulSet mounts the province's leaf certificate (Secret ``nats-leaf-tls``)."""
    (container,) = containers(find(docs, "StatefulSet", "nats"))
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == LEAF_TLS_VOLUME]
    path: str = mount["mountPath"]
    return path


def leaf_certificate(directory: Path) -> Path:
    """A national CA and a leaf certificate it issued, made in ``directory`` with
    deploy/tls/issue_certificates.py as the national office makes them: ``directory/national-ca``
    and ``directory/leaf`` (``client.pem``, ``client-key.pem``, ``ca.pem``: the Secret
    ``nats-leaf-tls``'s files). Returns the leaf's directory."""
    from referral_regency import deploy_module

    certificates = deploy_module("deploy/tls/issue_certificates.py", "issue_certificates")
    certificates.issue_ca(directory / "national-ca", "Pulih test national")
    certificates.issue_client(directory / "leaf", directory / "national-ca", "leaf-p33")
    return directory / "leaf"


def with_leaf_mounted(config: str, docs: list[Doc], leaf: Path) -> str:
    """The NATS config with the leaf certificate's mount point replaced by ``leaf``, the
    directory the Secret's files are in here."""
    mount = leaf_mount(docs).rstrip("/") + "/"
    assert mount in config, f"nats.conf names no file under {mount}"
    return config.replace(mount, f"{leaf}/")


def conf_blocks(text: str, opener: str) -> list[str]:
    """Every ``{ … }`` or ``[ … ]`` of a NATS config that follows ``opener`` (e.g. ``"LINK_3301"``,
    ``"remotes:"``), brackets included; comment lines are left out first."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    found = []
    for match in re.finditer(re.escape(opener) + r"\s*([{\[])", text):
        start, depth = match.start(1), 0
        for end in range(start, len(text)):
            depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(text[end], 0)
            if depth == 0:
                found.append(text[start : end + 1])
                break
    return found


def conf_items(array: str) -> list[str]:
    """The ``{ … }`` items of a NATS config array (``[ {…} {…} ]``)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(array):
        if char == "{":
            depth += 1
            start = i if depth == 1 else start
        elif char == "}":
            depth -= 1
            if depth == 0:
                items.append(array[start : i + 1])
    return items


def conf_canonical(text: str) -> str:
    """A NATS config value without what its syntax leaves optional (blanks, quotes, commas): two
    spellings of the same value compare equal."""
    return re.sub(r"[\s\",]", "", text)


def nats_server_test(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``nats-server -t -c config`` with ``env`` as its whole environment (the container's)."""
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
    )


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, its plain URL (the schemas of --schema-per-service are
    named after the services, so a schema of the shared test database would not do); dropped
    afterwards. Skips the test when PostgreSQL is not reachable."""
    next(postgres_schema_url(), None)  # skips when PostgreSQL is not reachable
    import asyncpg

    name = f"pulih_deploy_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))
