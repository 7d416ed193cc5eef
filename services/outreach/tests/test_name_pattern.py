"""The OpenAPI document's pattern of a name takes exactly the names the service takes: a name a
client checks against the document is never refused, and schemathesis generates only names the
service takes."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulih.outreach.bodies import EstablishUnit, RegisterClient
from pulih.outreach.domain.text import _BLANK_LETTERS, _JOINERS, TextError, clean_name
from pulih.outreach.name_pattern import name_pattern

PATTERN = re.compile(name_pattern())


def taken(name: str) -> bool:
    try:
        clean_name(name, "name")
    except TextError:
        return False
    return True


_EXCEPTIONS = _JOINERS | _BLANK_LETTERS
"""Characters the text rules treat unlike the rest of their category."""


def _kind(char: str) -> tuple[str, bool, bool, bool]:
    normal = unicodedata.normalize("NFC", char) == char
    return unicodedata.category(char), char.isspace(), normal, char in _EXCEPTIONS


def _points_to_try() -> list[int]:
    """The first and last code point of every run of code points alike (category, white space,
    NFC, an exception of the text rules), where a class of the pattern could begin or end; and
    every code point NFC changes."""
    points = []
    kinds = [_kind(chr(point)) for point in range(sys.maxunicode + 1)]
    for point, kind in enumerate(kinds):
        first = point == 0 or kinds[point - 1] != kind
        last = point == sys.maxunicode or kinds[point + 1] != kind
        if first or last or not kind[2]:
            points.append(point)
    return points


def test_the_pattern_and_the_service_agree_on_every_kind_of_character() -> None:
    disagree = [
        text
        for point in _points_to_try()
        for text in (chr(point), f"a{chr(point)}a", f" {chr(point)}\t", f"\t{chr(point)}1")
        if bool(PATTERN.fullmatch(text)) != taken(text)
    ]
    assert not disagree, [text.encode("unicode_escape") for text in disagree[:20]]


@pytest.mark.parametrize(
    "name",
    [
        *["Budi Santoso", "ꦧꦸꦢꦶ", " Ra\u200dhman\n", "Unit 7", "\u3164A"],  # taken
        *["12345 -.", "\u200d", "\u3164", "A\u200bB", "a\x00", " \t"],  # refused
    ],
)
def test_the_pattern_says_what_the_text_rules_say(name: str) -> None:
    assert bool(PATTERN.fullmatch(name)) == taken(name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_any_text_is_taken_exactly_when_it_fits_the_pattern(text: str) -> None:
    assert bool(PATTERN.fullmatch(text)) == taken(text)


@settings(max_examples=40, deadline=None)
@given(st.from_regex(PATTERN, fullmatch=True))
def test_every_name_generated_from_the_pattern_is_taken(name: str) -> None:
    assert taken(name)


def test_a_units_and_a_clients_name_carry_the_pattern() -> None:
    unit = EstablishUnit.model_json_schema()["properties"]["name"]
    person = RegisterClient.model_json_schema()["$defs"]["Identity"]["properties"]["full_name"]
    assert unit["pattern"] == person["pattern"] == PATTERN.pattern
