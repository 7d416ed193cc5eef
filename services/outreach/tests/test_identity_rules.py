"""Rules for a client's identity: NIK, phone number and age band."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulih.outreach.domain.identity import IdentityError, age_band, validate_nik, validate_phone

# 32 Jawa Barat, 73 Kota Bandung, 01 a district; born 15 May 1990.
MAN = "3273011505900001"
WOMAN = "3273015505900002"  # day 15 + 40


def nik(
    *,
    province: str = "32",
    day: int = 15,
    month: int = 5,
    yy: int = 90,
    woman: bool = False,
    serial: str = "0001",
) -> str:
    return f"{province}7301{day + (40 if woman else 0):02d}{month:02d}{yy:02d}{serial}"


def refused_nik(value: str, **kwargs: object) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        validate_nik(value, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- NIK -----------------------------------------------------------------------------------------


def test_a_man_s_nik_carries_his_birth_day_as_is() -> None:
    assert nik() == MAN
    assert validate_nik(MAN, birth_date=date(1990, 5, 15), sex="m") == MAN


def test_a_woman_s_nik_carries_her_birth_day_plus_40() -> None:
    assert nik(woman=True, serial="0002") == WOMAN
    assert validate_nik(WOMAN, birth_date=date(1990, 5, 15), sex="f") == WOMAN


def test_surrounding_whitespace_is_stripped() -> None:
    assert validate_nik(f"  {MAN}\n") == MAN


@pytest.mark.parametrize(
    "value",
    [
        MAN[:-1],  # 15 digits
        MAN + "1",  # 17 digits
        "",
        "3273 0115 0590 0001",  # spaces inside are not a NIK
        "32.73.01.150590.0001",  # neither are dots
        "32730115059O0001",  # letter O for zero
        "327301150590000A",
        "٣٢٧٣٠١١٥٠٥٩٠٠٠٠١",  # Arabic-Indic digits
    ],
)
def test_a_nik_is_exactly_16_digits(value: str) -> None:
    error = refused_nik(value)
    assert error.field == "nik"
    assert error.code == "invalid_nik"
    assert "16 digits" in error.message


@pytest.mark.parametrize("province", ["00", "09", "10"])
def test_province_codes_below_11_are_refused(province: str) -> None:
    assert "province" in refused_nik(nik(province=province)).message


@pytest.mark.parametrize("province", ["11", "99"])
def test_province_codes_11_to_99_are_accepted(province: str) -> None:
    assert validate_nik(nik(province=province)) == nik(province=province)


@pytest.mark.parametrize("month", [0, 13])
def test_a_bad_month_is_refused(month: int) -> None:
    assert "month" in refused_nik(nik(month=month)).message


@pytest.mark.parametrize(
    ("encoded_day", "why"),
    [
        ("00", "day 0"),
        ("32", "day 32"),
        ("40", "neither a man's day nor a woman's"),
        ("72", "a woman's day 32"),
        ("99", "out of range"),
    ],
)
def test_a_bad_birth_day_is_refused(encoded_day: str, why: str) -> None:
    value = f"327301{encoded_day}05900001"
    assert "day" in refused_nik(value).message, why


@pytest.mark.parametrize(("day", "woman"), [(1, False), (31, False), (1, True), (31, True)])
def test_days_01_to_31_and_41_to_71_are_accepted(day: int, woman: bool) -> None:
    value = nik(day=day, month=1, woman=woman)
    assert validate_nik(value, sex="f" if woman else "m") == value


def test_the_day_month_and_year_must_be_a_real_date() -> None:
    assert "not a date" in refused_nik(nik(day=31, month=4)).message  # 31 April
    assert "not a date" in refused_nik(nik(day=29, month=2, yy=1)).message  # 1901 and 2001
    assert "not a date" in refused_nik(nik(day=30, month=2, yy=0, woman=True)).message


def test_29_february_is_accepted_when_either_century_is_a_leap_year() -> None:
    value = nik(day=29, month=2, yy=0)  # 1900 is not a leap year, 2000 is
    assert validate_nik(value, birth_date=date(2000, 2, 29)) == value
    assert validate_nik(nik(day=29, month=2, yy=4, woman=True))


def test_serial_0000_is_refused() -> None:
    assert "serial" in refused_nik(nik(serial="0000")).message


@pytest.mark.parametrize(
    "birth_date",
    [
        date(1990, 5, 16),  # day
        date(1990, 6, 15),  # month
        date(1991, 5, 15),  # year
    ],
)
def test_a_nik_that_does_not_match_the_birth_date_is_refused(birth_date: date) -> None:
    error = refused_nik(MAN, birth_date=birth_date)
    assert error.field == "nik"
    assert "birth date" in error.message


def test_the_two_digit_year_matches_either_century() -> None:
    born_2007 = nik(day=3, month=8, yy=7)
    assert validate_nik(born_2007, birth_date=date(2007, 8, 3)) == born_2007


@pytest.mark.parametrize(("value", "sex"), [(MAN, "f"), (WOMAN, "m")])
def test_a_nik_that_does_not_match_the_sex_is_refused(value: str, sex: str) -> None:
    error = refused_nik(value, sex=sex)
    assert error.field == "nik"
    assert "sex" in error.message


def test_sex_is_m_or_f() -> None:
    assert validate_nik(WOMAN, sex=" F ") == WOMAN
    error = refused_nik(MAN, sex="x")
    assert (error.field, error.code) == ("sex", "invalid_sex")


def test_error_messages_never_repeat_the_nik() -> None:
    for bad in (nik(month=13), nik(serial="0000"), "3273011505900001x"):
        assert "3273" not in str(refused_nik(bad))
    assert MAN not in str(refused_nik(MAN, birth_date=date(2000, 1, 1)))


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    st.booleans(),
    st.integers(11, 99),
    st.integers(1, 9999),
)
def test_any_real_birth_date_and_sex_make_a_valid_nik(
    birth_date: date, woman: bool, province: int, serial: int
) -> None:
    value = nik(
        province=str(province),
        day=birth_date.day,
        month=birth_date.month,
        yy=birth_date.year % 100,
        woman=woman,
        serial=f"{serial:04d}",
    )
    assert validate_nik(value, birth_date=birth_date, sex="f" if woman else "m") == value


# --- phone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "e164"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("  08123456789 ", "+628123456789"),
        ("021 1234567", "+62211234567"),  # Jakarta landline: 9 digits after the trunk 0
        ("+62-21-1234-5678", "+622112345678"),
        ("0" + "8" * 13, "+62" + "8" * 13),  # 13 digits, the most
    ],
)
def test_indonesian_numbers_become_e164(phone: str, e164: str) -> None:
    assert validate_phone(phone) == e164


@pytest.mark.parametrize(
    "phone",
    [
        "0" + "8" * 8,  # 8 digits after the trunk 0
        "+62" + "8" * 8,
        "0" + "8" * 14,  # 14 digits
        "+62" + "8" * 14,
        "+62 0812 3456 7890",  # trunk 0 kept after the country code
        "812 3456 7890",  # no prefix
        "+65 8123 4567",  # another country
        "(021) 1234567",  # only spaces and dashes may separate digits
        "0812.3456.7890",
        "0812-3456-789O",
        "",
    ],
)
def test_other_numbers_are_refused(phone: str) -> None:
    with pytest.raises(IdentityError) as caught:
        validate_phone(phone)
    assert (caught.value.field, caught.value.code) == ("phone", "invalid_phone")


# --- age band ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "day_before", "on_birthday"),
    [
        (15, "under_15", "15_24"),
        (25, "15_24", "25_34"),
        (35, "25_34", "35_44"),
        (45, "35_44", "45_plus"),
    ],
)
def test_a_birthday_today_moves_the_client_into_the_next_band(
    age: int, day_before: str, on_birthday: str
) -> None:
    birth_date = date(1980, 6, 15)
    birthday = date(1980 + age, 6, 15)
    assert age_band(birth_date, date(1980 + age, 6, 14)) == day_before
    assert age_band(birth_date, birthday) == on_birthday


def test_born_today_is_under_15() -> None:
    assert age_band(date(2025, 3, 1), date(2025, 3, 1)) == "under_15"


def test_an_old_client_is_45_plus() -> None:
    assert age_band(date(1940, 1, 1), date(2025, 1, 1)) == "45_plus"


def test_a_29_february_birthday_is_completed_on_1_march_in_common_years() -> None:
    born = date(2000, 2, 29)
    assert age_band(born, date(2015, 2, 28)) == "under_15"
    assert age_band(born, date(2015, 3, 1)) == "15_24"


def test_a_birth_date_in_the_future_is_refused() -> None:
    with pytest.raises(IdentityError) as caught:
        age_band(date(2025, 3, 2), date(2025, 3, 1))
    assert (caught.value.field, caught.value.code) == ("birth_date", "invalid_birth_date")
