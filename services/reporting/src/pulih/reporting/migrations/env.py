"""Alembic environment of reporting: migrations run through pulih.kit at start."""

from alembic import context

from pulih.kit.migrations import run_migrations
from pulih.reporting.store import Base

run_migrations(context, Base.metadata)  # type: ignore[arg-type]  # alembic.context proxies EnvironmentContext
