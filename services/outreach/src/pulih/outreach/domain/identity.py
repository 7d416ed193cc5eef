"""Rules for a client's identity: NIK, phone number, name, address, birth date and age band.

The NIK (Nomor Induk Kependudukan) is the 16-digit national population number on the KTP:
province (2 digits), regency (2), district (2), birth day (+40 for women), birth month, two-digit
birth year, and a 4-digit serial. Error messages never repeat the identity itself, so they can be
logged and returned safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from pulih.kit.dates import not_in_future
from pulih.kit.errors import Invalid
from pulih.outreach.domain.text import clean_name, clean_text

__all__ = [
    "AgeBand",
    "CheckedIdentity",
    "IdentityError",
    "age_band",
    "check_identity",
    "validate_nik",
    "validate_phone",
]

AgeBand = Literal["under_15", "15_24", "25_34", "35_44", "45_plus"]

_NIK_LENGTH: Final = 16
_FIRST_PROVINCE: Final = 11  # 11 is Aceh; codes 00-10 are not assigned
_WOMEN_DAY_OFFSET: Final = 40
_PHONE_MIN_DIGITS: Final = 9
_PHONE_MAX_DIGITS: Final = 13
_COUNTRY_CODE: Final = "62"


class IdentityError(Invalid):
    """An identity field that breaks the rules; ``code`` defaults to ``invalid_<field>``.

    ``field`` is the identity's own field (``nik``); a route places it in its body with
    ``exc.at("identity")``.
    """

    field: str

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(code if code is not None else f"invalid_{field}", message, field)


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts other scripts' digits (e.g. Arabic-Indic), which a NIK never has.
    return text.isascii() and text.isdigit()


def _nik_birth_dates(day: int, month: int, yy: int) -> list[date]:
    """The real dates the NIK's day/month/two-digit year can stand for (19yy and 20yy)."""
    dates = []
    for century in (1900, 2000):
        try:
            dates.append(date(century + yy, month, day))
        except ValueError:
            continue
    return dates


def validate_nik(nik: str, *, birth_date: date | None = None, sex: str | None = None) -> str:
    """Check an Indonesian NIK and return it without surrounding whitespace.

    Exactly 16 ASCII digits (no inner spaces or dots); province code 11-99; birth day 01-31, or
    41-71 for women; month 01-12; day, month and two-digit year a real date in 19yy or 20yy;
    serial not 0000. When ``birth_date`` is given its day, month and two-digit year must match;
    when ``sex`` ("m" or "f") is given the +40 rule must match. Raises :class:`IdentityError`
    (field ``nik``, code ``invalid_nik``; ``sex`` with code ``invalid_sex`` for a bad sex value).
    """
    value = nik.strip()
    if len(value) != _NIK_LENGTH or not _is_ascii_digits(value):
        raise IdentityError("nik", "a NIK is exactly 16 digits, with no spaces or dots")
    province = int(value[0:2])
    encoded_day = int(value[6:8])
    month = int(value[8:10])
    yy = int(value[10:12])
    serial = value[12:16]
    if province < _FIRST_PROVINCE:
        raise IdentityError("nik", "the province code (digits 1-2) must be 11-99")
    is_woman = encoded_day > _WOMEN_DAY_OFFSET
    day = encoded_day - _WOMEN_DAY_OFFSET if is_woman else encoded_day
    if not 1 <= day <= 31:
        raise IdentityError("nik", "the birth day (digits 7-8) must be 01-31, or 41-71 for women")
    if not 1 <= month <= 12:
        raise IdentityError("nik", "the birth month (digits 9-10) must be 01-12")
    if not _nik_birth_dates(day, month, yy):
        raise IdentityError("nik", "the birth day, month and year (digits 7-12) are not a date")
    if serial == "0000":
        raise IdentityError("nik", "the serial number (digits 13-16) cannot be 0000")
    if birth_date is not None and (birth_date.day, birth_date.month, birth_date.year % 100) != (
        day,
        month,
        yy,
    ):
        raise IdentityError("nik", "the birth date in the NIK does not match the birth date given")
    if sex is not None:
        normalised_sex = sex.strip().lower()
        if normalised_sex not in ("m", "f"):
            raise IdentityError("sex", 'sex must be "m" or "f"')
        if is_woman != (normalised_sex == "f"):
            raise IdentityError("nik", "the NIK's birth day (+40 for women) does not match the sex given")
    return value


def validate_phone(phone: str) -> str:
    """Check an Indonesian phone number and return it in E.164 form (``+62...``).

    Accepts ``+62...``, ``62...`` or ``0...`` followed by 9-13 digits (the national number,
    which cannot itself start with 0); spaces and dashes may separate digits. Raises
    :class:`IdentityError` (field ``phone``) otherwise.
    """
    compact = phone.strip().replace(" ", "").replace("-", "")
    if compact.startswith("+" + _COUNTRY_CODE):
        national = compact[3:]
    elif compact.startswith(_COUNTRY_CODE):
        national = compact[2:]
    elif compact.startswith("0"):
        national = compact[1:]
    else:
        raise IdentityError("phone", "an Indonesian number starts with +62, 62 or 0")
    if not _is_ascii_digits(national):
        raise IdentityError("phone", "a phone number holds only digits, spaces and dashes")
    if national.startswith("0"):
        raise IdentityError("phone", "drop the leading 0 after the country code 62")
    if not _PHONE_MIN_DIGITS <= len(national) <= _PHONE_MAX_DIGITS:
        raise IdentityError(
            "phone",
            f"a phone number has {_PHONE_MIN_DIGITS}-{_PHONE_MAX_DIGITS} digits after +62 or 0",
        )
    return f"+{_COUNTRY_CODE}{national}"


def _completed_years(birth_date: date, on: date) -> int:
    # A 29 February birthday is completed on 1 March in common years.
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


def age_band(birth_date: date, on: date) -> AgeBand:
    """The reporting age band for a client's age in completed years on ``on``.

    One of ``under_15``, ``15_24``, ``25_34``, ``35_44``, ``45_plus``; a birthday on ``on``
    counts as completed. A birth date after ``on`` raises :class:`IdentityError`
    (field ``birth_date``).
    """
    if birth_date > on:
        raise IdentityError("birth_date", "the birth date is in the future")
    age = _completed_years(birth_date, on)
    if age < 15:
        return "under_15"
    if age < 25:
        return "15_24"
    if age < 35:
        return "25_34"
    if age < 45:
        return "35_44"
    return "45_plus"


@dataclass(frozen=True)
class CheckedIdentity:
    """An identity that passed every rule, in the form it is sealed (NFC text, E.164 phone)."""

    full_name: str
    nik: str
    birth_date: date
    phone: str | None
    address: str | None
    age_band: AgeBand


def check_identity(
    *,
    full_name: str,
    nik: str,
    birth_date: date,
    sex: str,
    phone: str | None,
    address: str | None,
    registered_on: date,
    today: date,
) -> CheckedIdentity:
    """Check a whole identity at registration; raises :class:`~pulih.kit.errors.Invalid` naming
    the identity's own field (``full_name``, ``nik``, ``birth_date``, ``phone``, ``address``).

    The name holds a letter and no invisible or control character (:mod:`.text`); the birth date
    lies between 1900 and the regency's today, and is not after the registration; the NIK
    matches the birth date and sex; the phone number is Indonesian.
    """
    name = clean_name(full_name, "full_name")
    not_in_future(birth_date, today, "birth_date")
    checked_nik = validate_nik(nik, birth_date=birth_date, sex=sex)
    checked_phone = validate_phone(phone) if phone else None
    checked_address = clean_text(address, "address") if address else None
    band = age_band(birth_date, registered_on)
    return CheckedIdentity(name, checked_nik, birth_date, checked_phone, checked_address or None, band)
