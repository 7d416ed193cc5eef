"""``GET /v1/national/dhis2/…``: the national figures as DHIS2 import files (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/national/dhis2", tags=["national", "dhis2"])
