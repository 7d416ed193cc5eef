"""Settings refuse development secrets in production; tokens carry who may do what."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from pulih.kit.auth import Role, decode_token, issue_token
from pulih.kit.errors import Forbidden, Unauthorized
from pulih.kit.settings import Settings, async_driver_url

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


def test_production_refuses_the_development_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_OIDC_ISSUER"):
        Settings(PULIH_ENV="production", PULIH_DATA_DIR=tmp_path)


def test_the_development_master_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(PULIH_DATA_DIR=tmp_path, PULIH_MASTER_KEY=None)
    first = settings.master_key_bytes()
    assert len(first) == 32
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert Settings(PULIH_DATA_DIR=tmp_path, PULIH_MASTER_KEY=None).master_key_bytes() == first


def test_database_urls_get_their_async_drivers(tmp_path: Path) -> None:
    assert async_driver_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert async_driver_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    settings = Settings(PULIH_DATA_DIR=tmp_path, DATABASE_URL=None)
    assert settings.database_url_for("outreach") == f"sqlite+aiosqlite:///{tmp_path.resolve()}/outreach.db"


def test_a_token_round_trips_with_its_unit() -> None:
    unit = uuid.uuid4()
    principal = decode_token(
        issue_token(SECRET, sub="ap-1", role=Role.AGENT, regency="3301", unit_id=unit), SECRET, "3301"
    )
    assert (
        principal.role is Role.AGENT
        and principal.may_see_unit(unit)
        and not principal.may_see_unit(uuid.uuid4())
    )


def test_tokens_of_another_regency_are_403_and_bad_ones_401() -> None:
    other = issue_token(SECRET, sub="f", role=Role.FACILITATOR, regency="3302")
    with pytest.raises(Forbidden):
        decode_token(other, SECRET, "3301")
    with pytest.raises(Unauthorized):
        decode_token(
            issue_token("another-secret-of-thirty-two-bytes!!", sub="f", role="facilitator", regency="3301"),
            SECRET,
            "3301",
        )
    expired = issue_token(SECRET, sub="f", role="facilitator", regency="3301", ttl=timedelta(seconds=-5))
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(expired, SECRET, "3301")
    with pytest.raises(Unauthorized, match="unit_id"):
        decode_token(issue_token(SECRET, sub="a", role="agent", regency="3301"), SECRET, "3301")
