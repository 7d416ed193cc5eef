"""Routes for the clinic directory: which clinics exist, what they offer, where they serve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from pulih.kit.auth import CurrentUser, Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import NotFound
from pulih.kit.pagination import PAGED, Page, Pages, paged
from pulih.referral import handlers, queries
from pulih.referral.bodies import ClinicPage, ClinicView, RegisterClinic
from pulih.referral.store import Clinic

router = APIRouter(prefix="/v1", tags=["clinics"])

DIRECTORY_KEEPERS = (Role.FACILITATOR, Role.ADMIN)
"""Who adds clinics to the regency's directory."""


@router.post("/clinics", status_code=201, response_model=ClinicView, dependencies=[allow(*DIRECTORY_KEEPERS)])
async def register_clinic(body: RegisterClinic, cmd: CommandDep) -> JSONResponse:
    """Add a clinic to the directory (facilitator, admin). Its id is the slug in its subjects."""
    async with cmd.transaction() as tx:
        clinic = await handlers.register_clinic(tx, body)
        return tx.reply(ClinicView.model_validate(clinic), status_code=201)


@router.get("/clinics", response_model=ClinicPage, responses=PAGED)
async def list_clinics(
    runtime: RuntimeDep, principal: CurrentUser, pages: Annotated[Pages, paged(queries.CLINICS)]
) -> Page[ClinicView]:
    """Every clinic in the directory, by id (any caller of the regency)."""
    async with runtime.database.sessions() as session:
        clinics = await pages.scalars(session, select(Clinic))
    return pages.page([ClinicView.model_validate(c) for c in clinics])


@router.get("/clinics/{clinic_id}", response_model=ClinicView)
async def get_clinic(clinic_id: str, runtime: RuntimeDep, principal: CurrentUser) -> ClinicView:
    """One clinic of the directory."""
    async with runtime.database.sessions() as session:
        clinic = await session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("clinic_not_found", f"no clinic {clinic_id}", "clinic_id")
    return ClinicView.model_validate(clinic)
