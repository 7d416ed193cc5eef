"""Routes of the reporting API: indicators (placeholder until its helper lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["indicators"])
