"""Referral's own dependencies: built at start from the programme file, closed at shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from pulih.kit.nats_server import free_port
from pulih.kit.service import StartupError
from pulih.kit.testing import make_settings, serve
from pulih.referral.app import build
from pulih.referral.deps import ReferralDeps


def referral_app(tmp_path: Path, **settings: object) -> FastAPI:
    return build(
        make_settings(
            tmp_path,
            nats_url=f"nats://127.0.0.1:{free_port()}",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'referral.db'}",
            **settings,
        )
    )


async def test_the_client_to_outreach_is_closed_when_the_service_stops(tmp_path: Path) -> None:
    app = referral_app(tmp_path, PULIH_OUTREACH_URL="http://outreach.test:8101")
    async with serve(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        deps = app.state.runtime.deps_as(ReferralDeps)
        assert not deps.outreach.is_open  # opened by the first hand-over, not at start
        client = deps.outreach.client()
        assert str(client.base_url) == "http://outreach.test:8101"
        assert deps.outreach.is_open
    assert client.is_closed
    assert not deps.outreach.is_open


async def test_the_programmes_response_times_are_read_at_start(tmp_path: Path) -> None:
    programme = tmp_path / "slow.toml"
    programme.write_text(
        'programme = "slow"\nversion = "1"\n[referral]\nrespond_within_days = { routine = 7, urgent = 2 }\n'
    )
    app = referral_app(tmp_path, PULIH_PROGRAMME_FILE=programme)
    async with serve(app):
        deps = app.state.runtime.deps_as(ReferralDeps)
        assert {u.value: d for u, d in deps.response_times.days.items()} == {"routine": 7, "urgent": 2}


@pytest.mark.parametrize(
    "text",
    [
        'programme = "broken"\nversion = "1"\n[referral]\nrespond_within_days = { routine = 3 }\n',
        "programme = [not toml",
    ],
    ids=["without urgent response time", "not TOML"],
)
async def test_a_bad_programme_file_stops_the_service_at_start_naming_the_file(
    tmp_path: Path, text: str
) -> None:
    programme = tmp_path / "broken.toml"
    programme.write_text(text)
    app = referral_app(tmp_path, PULIH_PROGRAMME_FILE=programme)
    with pytest.raises(StartupError, match=f"referral cannot start: programme file {programme}"):
        async with serve(app):
            pass
