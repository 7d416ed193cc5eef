"""Routes of the reporting API: dashboard (placeholder until its helper lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["dashboard"])
