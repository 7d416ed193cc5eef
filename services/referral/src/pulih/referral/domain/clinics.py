"""The clinic directory's words: kinds of clinic, what a clinic offers, where it serves. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pulih.contracts.codes import ClinicService


class ClinicKind(StrEnum):
    """Kinds of clinic a unit refers to.

    ``klinik_pratama``: primary clinic. ``balai`` and ``loka``: BNN's own rehabilitation centres
    (large and small). ``rumah_sakit``: hospital. ``puskesmas_ipwl``: community health centre
    registered as an IPWL (*Institusi Penerima Wajib Lapor*, where drug users report for
    treatment). ``sosial``: a social-rehabilitation institution.
    """

    KLINIK_PRATAMA = "klinik_pratama"
    BALAI = "balai"
    LOKA = "loka"
    RUMAH_SAKIT = "rumah_sakit"
    PUSKESMAS_IPWL = "puskesmas_ipwl"
    SOSIAL = "sosial"


def offers(services: Iterable[str], service: ClinicService) -> bool:
    """Whether a clinic offering ``services`` can take a client referred for ``service``."""
    return service.value in set(services)


def serves(regencies: Iterable[str], regency: str) -> bool:
    """Whether a clinic serving ``regencies`` takes clients of ``regency``."""
    return regency in set(regencies)
