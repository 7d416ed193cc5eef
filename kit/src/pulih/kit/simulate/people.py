"""The simulator's made-up people and answers, drawn from a seeded random source: the same seed,
regency and month give the same people, the same screenings and the same days.

Every person is made up: a name from the lists below, a NIK that agrees with the birth date, the
sex and the regency's first district (``<code>01``), and a serial that differs from month to
month, so a second run registers new people. Their WHOQOL-BREF answers are made up too: a
baseline at intake, and an exit that is better for most completers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

FIRST_NAMES_M = ("Budi", "Agus", "Joko", "Rudi", "Andi", "Dedi", "Eko", "Hendra", "Rizky", "Fajar",
                 "Yusuf", "Bayu")  # fmt: skip
FIRST_NAMES_F = ("Siti", "Dewi", "Rina", "Wulan", "Ayu", "Putri", "Indah", "Lestari", "Nur", "Fitri",
                 "Maya", "Ratna")  # fmt: skip
LAST_NAMES = ("Santoso", "Wijaya", "Saputra", "Pratama", "Hidayat", "Kurniawan", "Setiawan", "Nugroho",
              "Lubis", "Siregar", "Rahman", "Hasibuan", "Tanjung", "Purnomo", "Suryadi")  # fmt: skip
STREETS = ("Jl. Merdeka", "Jl. Sudirman", "Jl. Diponegoro", "Jl. Ahmad Yani", "Jl. Pahlawan", "Jl. Kartini")

WHOQOL_BASELINE = {f"q{i}": 2 if i in (3, 4, 26) else 3 for i in range(1, 27)}
"""A baseline WHOQOL-BREF (the README walkthrough's), the one the federation demo takes."""

LOW_RISK: tuple[list[dict[str, Any]], ...] = (
    [{"substance": "cannabis", "ever_used": True, "q2": 2, "q3": 0, "q4": 0, "q5": 0, "q6": 0, "q7": 0}],
    [{"substance": "alcohol", "ever_used": True, "q2": 3, "q3": 0, "q4": 0, "q5": 0, "q6": 3, "q7": 0}],
)
"""WHO ASSIST v3 answers scoring low risk (cannabis 2, alcohol 6)."""
MODERATE_RISK: tuple[list[dict[str, Any]], ...] = (
    [{"substance": "amphetamine_type_stimulants", "ever_used": True, "q2": 4, "q3": 4, "q4": 5, "q5": 5,
      "q6": 3, "q7": 3},
     {"substance": "tobacco", "ever_used": True, "q2": 6, "q3": 3, "q4": 0, "q6": 0, "q7": 0}],
    [{"substance": "cannabis", "ever_used": True, "q2": 4, "q3": 3, "q4": 4, "q5": 0, "q6": 3, "q7": 0}],
)  # fmt: skip
"""Answers scoring moderate risk (the walkthrough's sabu and tobacco: 24; cannabis: 14)."""
HIGH_RISK: tuple[list[dict[str, Any]], ...] = (
    [{"substance": "amphetamine_type_stimulants", "ever_used": True, "q2": 6, "q3": 6, "q4": 7, "q5": 8,
      "q6": 6, "q7": 6}],
    [{"substance": "opioids", "ever_used": True, "q2": 4, "q3": 5, "q4": 6, "q5": 6, "q6": 6, "q7": 3}],
)  # fmt: skip
"""Answers scoring high risk (sabu daily: 39; opioids: 30)."""


@dataclass(frozen=True)
class Person:
    """A made-up client: the identity outreach seals, and the screening they will give."""

    full_name: str
    nik: str
    birth_date: date
    sex: str
    phone: str
    address: str
    risk: str
    substances: list[dict[str, Any]]
    injecting: str

    def identity(self) -> dict[str, str]:
        """The identity as ``POST /v1/clients`` takes it."""
        return {
            "full_name": self.full_name,
            "nik": self.nik,
            "birth_date": str(self.birth_date),
            "sex": self.sex,
            "phone": self.phone,
            "address": self.address,
        }


def month_random(seed: int, code: str, month: date, purpose: str = "work") -> random.Random:
    """The random source of one regency's month (for ``purpose``): the same seed, regency and
    month, the same draws."""
    return random.Random(f"pulih-demo:{seed}:{code}:{month:%Y-%m}:{purpose}")


def baseline_whoqol(rng: random.Random, low: int, high: int) -> dict[str, int]:
    """A WHOQOL-BREF at intake: every item from ``low`` to ``high``."""
    return {f"q{i}": rng.randint(low, high) for i in range(1, 27)}


def exit_whoqol(rng: random.Random, baseline: dict[str, int], improved: bool) -> dict[str, int]:
    """The exit WHOQOL-BREF of a client with ``baseline``: most items a point better when the
    client ``improved``, otherwise a point worse on a few (items 3, 4 and 26 are reversed in
    scoring, so "better" there is lower)."""
    reversed_items = {"q3", "q4", "q26"}
    answers = {}
    for item, value in baseline.items():
        step = (1 if rng.random() < 0.8 else 0) if improved else (-1 if rng.random() < 0.3 else 0)
        if item in reversed_items:
            step = -step
        answers[item] = min(5, max(1, value + step))
    return answers


RISK_MIX = (0.35, 0.47)
"""The shares of low and moderate risk among the people screened (the rest: high)."""


def person(
    rng: random.Random, code: str, month: date, serial: int, on: date, mix: tuple[float, float] = RISK_MIX
) -> Person:
    """A new client of regency ``code`` registered on ``on``; ``serial`` (1-99) numbers the month's
    people, so a NIK never repeats across the months; ``mix`` is the share of low and of moderate
    risk among them."""
    sex = rng.choice(("m", "m", "m", "f"))  # most clients of the programme are men
    first = rng.choice(FIRST_NAMES_M if sex == "m" else FIRST_NAMES_F)
    born = on - timedelta(days=rng.randint(17 * 365, 45 * 365))
    day = born.day + (40 if sex == "f" else 0)
    nik_serial = (month.year * 12 + month.month) % 90 * 100 + 1000 + serial  # 1001-9999, by month
    nik = f"{code}01{day:02d}{born:%m%y}{nik_serial:04d}"
    draw = rng.random()
    if draw < mix[0]:
        risk, answers, injecting = "low", rng.choice(LOW_RISK), "never"
    elif draw < mix[0] + mix[1]:
        risk, answers, injecting = (
            "moderate",
            rng.choice(MODERATE_RISK),
            rng.choice(("never", "never", "earlier")),
        )
    else:
        risk, answers = "high", rng.choice(HIGH_RISK)
        injecting = "past_3_months" if answers[0]["substance"] == "opioids" else "never"
    return Person(
        full_name=f"{first} {rng.choice(LAST_NAMES)}",
        nik=nik,
        birth_date=born,
        sex=sex,
        phone=f"08{rng.randint(11, 59)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        address=f"{rng.choice(STREETS)} No. {rng.randint(1, 200)}",
        risk=risk,
        substances=answers,
        injecting=injecting,
    )
