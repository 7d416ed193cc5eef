"""Free text a person types: one Unicode form, one line, nothing invisible, and names with letters."""

from __future__ import annotations

import pytest

from pulih.outreach.domain.text import TextError, clean_name, clean_text


def test_text_is_stored_in_nfc_without_surrounding_space() -> None:
    assert clean_text("  Sa\u0308puti\t", "address") == "S\u00e4puti"


@pytest.mark.parametrize(
    "name",
    ["Budi Santoso", "Siti Nur'aini", "Ni Luh Putu Ayu", "I Gusti Ngurah Rai", "Nguyễn Văn An", "ꦧꦸꦢꦶ"],
)
def test_names_people_have_pass(name: str) -> None:
    assert clean_name(name, "full_name") == name


def test_joiners_inside_a_word_pass_but_do_not_make_a_name() -> None:
    assert clean_name("Ra\u200dhman", "full_name") == "Ra\u200dhman"
    with pytest.raises(TextError) as caught:
        clean_name("\u200d", "full_name")
    assert caught.value.code == "no_letter"


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x07",
        "\n",
        "\r",
        "\x1b",
        "\x85",
        "\u200b",
        "\u2060",
        "\ufeff",
        "\u00ad",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u200f",
    ],
)
def test_control_and_invisible_characters_are_refused_where_they_stand(char: str) -> None:
    with pytest.raises(TextError) as caught:
        clean_text(f"Budi{char}Santoso", "full_name")
    assert (caught.value.code, caught.value.field) == ("control_character", "full_name")
    assert "position 4" in caught.value.message and "Budi" not in caught.value.message


@pytest.mark.parametrize("value", ["", "   ", "\t \u3000"])
def test_blank_text_is_refused(value: str) -> None:
    with pytest.raises(TextError) as caught:
        clean_text(value, "address")
    assert (caught.value.code, caught.value.field) == ("blank", "address")


@pytest.mark.parametrize("filler", ["\u3164\u3164", "\u115f", "\u1160", "\uffa0 \uffa0"])
def test_a_name_of_hangul_fillers_draws_nothing_and_is_refused(filler: str) -> None:
    with pytest.raises(TextError) as caught:
        clean_name(filler, "full_name")
    assert caught.value.code == "no_letter"
