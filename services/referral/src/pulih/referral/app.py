"""Wiring of the referral service: ``uvicorn pulih.referral.app:app`` (port 8103)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pulih.kit.scheduler import periodic
from pulih.kit.service import ServiceSpec, create_app
from pulih.kit.settings import Settings
from pulih.referral import consumers
from pulih.referral.api import answers, clinics, identity, referrals
from pulih.referral.deps import ReferralDeps
from pulih.referral.handlers import escalate_overdue

spec = ServiceSpec(
    name="referral",
    port=8103,
    title="Pulih referral",
    description=(
        "The clinic directory, referrals of consenting clients to clinics, the clinics' answers "
        "(NATS or HTTP), escalation when a clinic does not answer in time or declines, and the "
        "audited identity hand-over to the addressed clinic."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=(clinics.router, referrals.router, answers.router, identity.router),
    dependencies=ReferralDeps.build,
    subscribe=consumers.subscribe,
    background=(periodic("escalate-overdue", escalate_overdue, lambda rt: rt.settings.scheduler_seconds),),
)


def build(settings: Settings | None = None) -> FastAPI:
    """The referral app for ``settings`` (environment variables by default)."""
    return create_app(spec, settings)


app = build()
