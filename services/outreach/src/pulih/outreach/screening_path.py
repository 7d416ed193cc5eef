"""The regency's screening path (risk → recommendation), read from its programme file."""

from __future__ import annotations

from pulih.kit.programme import load_programme
from pulih.kit.runtime import ServiceRuntime
from pulih.outreach.assist import Recommendation, ScreeningPath


def path_from_programme(programme: dict[str, object]) -> ScreeningPath:
    """The ``[screening.path]`` section as a :class:`ScreeningPath` (defaults where absent)."""
    screening = programme.get("screening", {})
    section = screening.get("path", {}) if isinstance(screening, dict) else {}
    if not isinstance(section, dict):
        raise ValueError("[screening.path] must be a table")
    default = ScreeningPath()
    return ScreeningPath(
        low=Recommendation(section.get("low", default.low)),
        moderate=Recommendation(section.get("moderate", default.moderate)),
        high=Recommendation(section.get("high", default.high)),
        recent_injecting=Recommendation(section.get("recent_injecting", default.recent_injecting)),
    )


def screening_path(runtime: ServiceRuntime) -> ScreeningPath:
    """The path in force for this deployment (loaded once)."""
    path = runtime.extras.get("screening_path")
    if not isinstance(path, ScreeningPath):
        path = path_from_programme(load_programme(runtime.settings.programme_file))
        runtime.extras["screening_path"] = path
    return path
