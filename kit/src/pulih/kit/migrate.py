"""``python -m pulih.kit.migrate``: migrate services' stores before they start (a deployment's
migration step: the compose file's ``migrate``, a Kubernetes init container).

Each service also migrates its store at start (:mod:`pulih.kit.migrations`); a step of its own
lets a deployment start the services only once every store is at head, and report a failing
migration once, by name, instead of as services that keep restarting.

- ``python -m pulih.kit.migrate outreach`` migrates the store ``DATABASE_URL`` names, as the
  service would (a SQLite file in ``PULIH_DATA_DIR`` without it). A PostgreSQL URL with
  ``?search_path=<schema>`` gets its schema created first.
- ``python -m pulih.kit.migrate --schema-per-service outreach rehab referral reporting`` gives
  each service the schema named after it in the database of ``DATABASE_URL``
  (``…/pulih?search_path=outreach`` …): what the services' own ``DATABASE_URL`` must then name.

On PostgreSQL each migration holds a transaction-scoped advisory lock on its service and schema,
so replicas that start together (init containers) migrate one after the other: the first one
applies the revisions, the others find the store at head. It prints one line per service (its
revision) and exits 0; 1, with one line saying which store failed and why, otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from importlib.util import find_spec
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, make_url, text

from pulih.kit.database import Database
from pulih.kit.migrations import alembic_config
from pulih.kit.settings import async_driver_url

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationFailed(Exception):
    """A store could not be migrated (the message names the service and says why)."""


def migrations_of(service: str) -> Path:
    """The Alembic script directory of ``service`` (``pulih.<service>/migrations``), found without
    importing the service (which would build its app, and want its secrets)."""
    if not _NAME.match(service):
        raise MigrationFailed(f"{service!r} is not a service name")
    spec = find_spec(f"pulih.{service}")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        scripts = Path(location) / "migrations"
        if (scripts / "env.py").exists():
            return scripts
    raise MigrationFailed(f"{service}: no such service installed (no pulih.{service}.migrations)")


def store_url(service: str, *, schema_per_service: bool) -> str:
    """The store of ``service``: ``DATABASE_URL`` (with its schema, given ``schema_per_service``),
    else the service's SQLite file in ``PULIH_DATA_DIR``."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        if schema_per_service:
            raise MigrationFailed("--schema-per-service needs DATABASE_URL (a PostgreSQL database)")
        data_dir = Path(os.environ.get("PULIH_DATA_DIR", ".pulih"))
        return async_driver_url(f"sqlite:///{(data_dir / f'{service}.db').resolve()}")
    url = async_driver_url(url)
    if schema_per_service:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise MigrationFailed("--schema-per-service needs a PostgreSQL DATABASE_URL")
        url = parsed.update_query_dict({"search_path": service}).render_as_string(hide_password=False)
    return url


def _schema_of(url: str) -> str | None:
    schema = make_url(url).query.get("search_path")
    if schema is None:
        return None
    if not isinstance(schema, str) or not _NAME.match(schema):
        raise MigrationFailed(f"search_path={schema!r} is not one plain schema name")
    return schema


async def migrate(service: str, url: str) -> str:
    """Bring ``service``'s store at ``url`` to head; return its revision."""
    scripts = migrations_of(service)
    schema = _schema_of(url)
    database = Database(url)
    cfg = alembic_config(scripts)

    def upgrade(connection: Connection) -> str:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        return str(MigrationContext.configure(connection).get_current_revision())

    try:
        async with database.engine.begin() as conn:
            if not database.is_sqlite:
                lock = f"pulih.kit.migrate {service} {schema or ''}"
                await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": lock})
                if schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            return await conn.run_sync(upgrade)
    finally:
        await database.dispose()


async def migrate_one(service: str, *, schema_per_service: bool) -> str:
    """Migrate ``service``'s store; the line that says so."""
    url = store_url(service, schema_per_service=schema_per_service)
    try:
        revision = await migrate(service, url)
    except MigrationFailed:
        raise
    except Exception as exc:
        where = make_url(url).render_as_string(hide_password=True)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MigrationFailed(f"{service}: the store at {where} was not migrated: {reason}") from exc
    schema = _schema_of(url)
    return f"{service}: at revision {revision}" + (f" (schema {schema})" if schema else "")


async def migrate_all(services: list[str], *, schema_per_service: bool) -> None:
    """Migrate each service in turn, printing its line; stop at the first that fails."""
    for service in services:
        print(await migrate_one(service, schema_per_service=schema_per_service), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pulih.kit.migrate", description="migrate services' stores to head"
    )
    parser.add_argument("services", nargs="+", metavar="SERVICE", help="outreach, rehab, referral, reporting")
    parser.add_argument(
        "--schema-per-service",
        action="store_true",
        help="each service in the schema named after it, in the PostgreSQL database of DATABASE_URL",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(migrate_all(args.services, schema_per_service=args.schema_per_service))
    except MigrationFailed as exc:
        print(f"pulih migrate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
