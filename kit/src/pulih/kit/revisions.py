"""The revisions of a service's migrations, read without Alembic or SQLAlchemy.

Alembic, with Mako and Pygments, is some 10 MiB of a process's memory: a service whose store is
at head (:func:`pulih.kit.migrations.store_at_head`) and the ``pulih up`` supervisor (which
checks the SQLite stores before starting the services) read the revision files' source instead,
and the stores' ``alembic_version`` themselves.
"""

from __future__ import annotations

import ast
import sqlite3
from importlib.util import find_spec
from pathlib import Path


def script_heads(script_location: Path) -> set[str]:
    """The head revisions of the script directory at ``script_location``, read from the source of
    its revision files (``revision`` and ``down_revision`` written as literals); empty when one
    cannot be read so."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((script_location / "versions").glob("*.py")):
        try:
            assigned = _literals(path, ("revision", "down_revision"))
        except ValueError:
            return set()
        revision, down = assigned.get("revision"), assigned.get("down_revision")
        if not isinstance(revision, str):
            return set()
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, (tuple, list)):
            parents.update(str(each) for each in down)
    return revisions - parents


def _literals(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The values assigned to ``names`` at the top of the Python file ``path`` (``ValueError`` if
    one is not a literal)."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(value)
    return found


def migrations_of(service: str) -> Path | None:
    """The Alembic script directory of ``service`` (``pulih.<service>/migrations``), found
    without importing the service; ``None`` if it has none."""
    spec = find_spec(f"pulih.{service}")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        scripts = Path(location) / "migrations"
        if (scripts / "env.py").exists():
            return scripts
    return None


def sqlite_store_at_head(path: Path, script_location: Path) -> bool:
    """Whether the SQLite store at ``path`` exists and its revisions are the heads of
    ``script_location`` (read with the standard library's :mod:`sqlite3`, read-only)."""
    heads = script_heads(script_location)
    if not heads or not path.exists():
        return False
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return {row[0] for row in rows} == heads
