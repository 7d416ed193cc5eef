"""A regency for the referral system tests: a nats-server loaded with deploy/'s permissions
(Pulih's service user and one user per clinic), outreach and referral running against it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import REGENCY

ROOT = Path(__file__).resolve().parents[1]
SERVICE_PASSWORD = "pulih-service-test-password"
CLINIC_PASSWORDS = {"klinik-pratama-sehat": "password-of-klinik", "rsud-cilacap": "password-of-rsud"}


def deploy_module(path: str, name: str) -> ModuleType:
    """Load a script of deploy/ (they are not packages: operators run them as they are)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


clinic_users = deploy_module("deploy/nats/clinic_users.py", "clinic_users")


def secured_nats(store: Path) -> NatsServer:
    """A nats-server with JetStream and the authorization block deploy/ generates."""
    block = clinic_users.accounts_block(REGENCY, SERVICE_PASSWORD, CLINIC_PASSWORDS)
    return NatsServer(store, server_name="pulih-test", domain=f"r{REGENCY}", extra_config=block)


def service_url(server: NatsServer) -> str:
    """The URL Pulih's services connect with (the service user)."""
    return f"nats://{clinic_users.SERVICE_USER}:{SERVICE_PASSWORD}@{server.host}:{server.port}"
