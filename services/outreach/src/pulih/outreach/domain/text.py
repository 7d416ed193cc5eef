"""The rules of free text a person types into outreach: names and addresses, a unit's name.

Text is stored as Unicode NFC (one spelling per name, whatever the device's keyboard made of
it), trimmed of surrounding white space, and refused when it holds a character nobody can see
or type on purpose:

- control characters (C0 and C1, NUL, tab and line breaks included: every field is one line);
- format characters that hide or reorder text, such as zero-width spaces and the bidirectional
  overrides and isolates (``U+202E`` makes ``Budi`` display as ``iduB``), except the zero-width
  joiner and non-joiner that some scripts need inside a word;
- lone surrogates (not characters at all) and unassigned code points.

Text that is blank once trimmed is refused (``blank``). A name must also hold at least one
letter that draws something, so a name of only spaces, digits, punctuation, zero-width
characters or Hangul fillers is refused. Pure; errors never repeat the text itself.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from pulih.kit.errors import Invalid

_JOINERS: Final = frozenset({"\u200c", "\u200d"})  # ZWNJ and ZWJ: part of words in some scripts
_BLANK_LETTERS: Final = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0"})
"""Hangul fillers: Unicode calls them letters, but they draw nothing (a name of fillers is blank)."""
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Cn"})


class TextError(Invalid):
    """A text field that breaks the rules: ``blank``, ``control_character`` or ``no_letter``."""


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def clean_text(value: str, field: str) -> str:
    """``value`` in NFC without surrounding white space; 422 ``control_character`` (field
    ``field``) if it holds a control, invisible-format, surrogate or unassigned character."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise TextError("blank", f"{field} is blank", field)
    for index, char in enumerate(text):
        if char in _JOINERS:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise TextError(
                "control_character",
                f"{field} holds an invisible or control character ({_describe(char)}) at position {index}",
                field,
            )
    return text


def clean_name(value: str, field: str) -> str:
    """:func:`clean_text`, and a name holds at least one letter: 422 ``no_letter`` otherwise."""
    text = clean_text(value, field)
    if not any(unicodedata.category(c).startswith("L") and c not in _BLANK_LETTERS for c in text):
        raise TextError("no_letter", f"{field} holds no letter", field)
    return text
