"""Routes of the reporting API: phases (placeholder until its helper lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["phases"])
