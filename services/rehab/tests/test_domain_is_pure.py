"""Rehab's rules import no web framework, no broker and no store (ARCHITECTURE.md)."""

from __future__ import annotations

import subprocess
import sys


def test_the_domain_imports_neither_fastapi_nor_faststream_nor_sqlalchemy() -> None:
    probe = (
        "import pkgutil, importlib, sys\n"
        "import pulih.rehab.domain as domain\n"
        "for m in pkgutil.iter_modules(domain.__path__):\n"
        "    importlib.import_module(f'pulih.rehab.domain.{m.name}')\n"
        "print(sorted(m for m in ('fastapi', 'faststream', 'sqlalchemy') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
