"""Outreach's dependencies are built at start: a bad programme file stops it there, saying which."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from pulih.kit.service import StartupError
from pulih.kit.testing import make_settings
from pulih.outreach.app import build


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('programme = "x"\nversion = 1\n[screening.path]\nmoderate = "sometimes"\n', "sometimes"),
        ("programme = [\n", "programme file"),
        ("version = 1\n", "must say its programme"),
    ],
)
async def test_a_bad_programme_file_stops_outreach_at_start(
    tmp_path: Path, text: str, complaint: str
) -> None:
    programme = tmp_path / "broken.toml"
    programme.write_text(text)
    app = build(make_settings(tmp_path, nats_url="nats://127.0.0.1:1", PULIH_PROGRAMME_FILE=programme))
    with pytest.raises(StartupError, match="outreach cannot start") as failed:
        async with LifespanManager(app):
            pass
    assert complaint in str(failed.value)
    assert str(programme) in str(failed.value)
    assert not (tmp_path / "outreach.db").exists()  # it stopped before touching the store
