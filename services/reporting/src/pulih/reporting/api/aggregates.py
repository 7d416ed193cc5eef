"""Routes of the reporting API: aggregates (placeholder until its helper lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["aggregates"])
