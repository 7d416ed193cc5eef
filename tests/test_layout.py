"""The layout shows the architecture: each service's programme rules live in its ``domain/``
package, which imports no web framework, broker or database library (ARCHITECTURE.md, "Inside
a service")."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from importlib import import_module

import pytest

from pulih.kit.local_regency import installed_services

SERVICES = [s.name for s in installed_services()]
INFRASTRUCTURE = ("fastapi", "starlette", "faststream", "nats", "sqlalchemy", "httpx")


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_imports_no_infrastructure(service: str) -> None:
    package = import_module(f"pulih.{service}.domain")
    modules = [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    assert modules, f"pulih.{service}.domain has no modules"
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {INFRASTRUCTURE!r})))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True).stdout)
    assert loaded == [], f"pulih.{service}.domain pulls in {loaded}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_the_parts_the_architecture_names(service: str) -> None:
    for part in ("domain", "handlers", "api", "bodies", "consumers", "store", "deps", "app"):
        import_module(f"pulih.{service}.{part}")
