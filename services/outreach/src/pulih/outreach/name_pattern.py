"""A name's rules (:func:`pulih.outreach.domain.text.clean_name`) as a JSON Schema ``pattern``,
so that the OpenAPI document says which names the service takes.

A name is taken when, trimmed of white space, it holds a letter that draws something and no
control, invisible-format, surrogate or unassigned character. Python's ``re``, which schemathesis
(through hypothesis) generates requests from, has no Unicode categories (``\\p{L}``), so the
pattern spells each class out as code point ranges, read from the service's own Unicode database
(``unicodedata``, the one :mod:`~pulih.outreach.domain.text` asks):

    ^[white space]*[allowed]*[letter][allowed]*[white space]*$

Code points of the Basic Multilingual Plane are written ``\\uXXXX``, the others as themselves, so
that Python's ``re`` and ECMA-262 (with the ``u`` flag, as JSON Schema reads a pattern) read it
alike. The service checks the name itself (its error names the rule: ``blank``,
``control_character``, ``no_letter``); the pattern only says the same, and
``test_name_pattern`` shows they agree on every code point.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

from pulih.outreach.domain.text import _BLANK_LETTERS, _JOINERS, _REFUSED_CATEGORIES


def _classes() -> tuple[list[int], list[int], list[int]]:
    """Every code point that is white space (what ``str.strip`` trims), allowed in a name, and
    a letter that draws something; one pass over Unicode."""
    space, allowed, letter = [], [], []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        category = unicodedata.category(char)
        if char.isspace():
            space.append(point)
        if category not in _REFUSED_CATEGORIES or char in _JOINERS:
            allowed.append(point)
        if category[0] == "L" and char not in _BLANK_LETTERS:
            letter.append(point)
    return space, allowed, letter


def _written(point: int) -> str:
    return f"\\u{point:04x}" if point <= 0xFFFF else chr(point)


def _class(points: list[int]) -> str:
    """A character class of ``points`` (ascending), as ranges."""
    ranges = []
    first = last = points[0]
    for point in [*points[1:], -1]:
        if point == last + 1:
            last = point
            continue
        ranges.append(_written(first) if first == last else f"{_written(first)}-{_written(last)}")
        first = last = point
    return "[" + "".join(ranges) + "]"


@cache
def name_pattern() -> str:
    """The pattern of a name :func:`~pulih.outreach.domain.text.clean_name` takes (built when a
    schema is first asked for, in a second or so, then kept: about 16,000 characters)."""
    space, allowed, letter = (_class(points) for points in _classes())
    return f"^{space}*{allowed}*{letter}{allowed}*{space}*$"
