"""Reporting's tables (placeholder until the projection helper lands)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Reporting's tables."""
