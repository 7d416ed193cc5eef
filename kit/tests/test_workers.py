"""How many uvicorn workers ``pulih up`` gives a service: one, unless PostgreSQL and PULIH_WORKERS."""

from __future__ import annotations

import pytest

from pulih.kit.workers import uvicorn_workers, worker_args

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/pulih"


@pytest.mark.parametrize(
    ("env", "workers"),
    [
        ({}, 1),
        ({"PULIH_WORKERS": "3"}, 1),  # SQLite: one writer
        ({"PULIH_WORKERS": "3", "DATABASE_URL": "sqlite:///x.db"}, 1),
        ({"PULIH_WORKERS": "3", "DATABASE_URL": PG}, 3),
        ({"PULIH_WORKERS": "3", "DATABASE_URL": PG, "PULIH_CLOCK": "manual"}, 1),
        ({"DATABASE_URL": PG}, 1),
    ],
)
def test_one_worker_unless_postgresql_asks_for_more(env: dict[str, str], workers: int) -> None:
    assert uvicorn_workers(env) == workers
    assert worker_args(env) == ([] if workers == 1 else ["--workers", str(workers)])


@pytest.mark.parametrize("asked", ["two", "0", "-1"])
def test_a_wrong_count_is_named(asked: str) -> None:
    with pytest.raises(ValueError, match="PULIH_WORKERS"):
        uvicorn_workers({"PULIH_WORKERS": asked, "DATABASE_URL": PG})
