"""The programme file: the rules DOMAIN.md marks *configurable*, versioned, per regency.

The default ``ibm-16w-2021`` ships with the kit; a regency points ``PULIH_PROGRAMME_FILE`` at
its own TOML file. Services read the sections they need and ignore the rest.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

DEFAULT_PROGRAMME = "ibm-16w-2021"


def load_programme(path: Path | None = None) -> dict[str, Any]:
    """The programme file at ``path``, or the default one; raises ValueError if malformed."""
    if path is None:
        text = (files("pulih.kit") / "programmes" / f"{DEFAULT_PROGRAMME}.toml").read_text()
        source = DEFAULT_PROGRAMME
    else:
        text = path.read_text()
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"programme file {source}: {exc}") from exc
    for key in ("programme", "version"):
        if key not in data:
            raise ValueError(f"programme file {source} must say its {key}")
    return data
