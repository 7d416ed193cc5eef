"""Strict request types: a value is taken only in the JSON type its schema says.

Request bodies are pydantic models with ``ConfigDict(strict=True)`` (:data:`STRICT_BODY`): an
integer is never ``false`` or ``"5"``; a boolean is ``true`` or ``false``, never ``0``; text is
a string. FastAPI validates a body in pydantic's Python mode
(from the parsed JSON, not from the JSON text), where strict mode takes a date, a UUID or an
enum member only as that Python object, never as the string JSON carries it in. The types here
take the string as pydantic's strict JSON mode would, and nothing else:

- :data:`Integer`: a JSON integer, which JSON Schema says ``5.0`` is too (but not ``5.5``,
  ``"5"`` or ``false``): use it for every integer of a request body, or :data:`JSON_INTEGER`
  after the constraints of one (``Annotated[int, Field(ge=0), JSON_INTEGER]``);
- :data:`Day`: a date as ``YYYY-MM-DD`` and only so (pydantic reads ``0`` and ``"0"`` as
  1970-01-01, in strict JSON mode too);
- :data:`Id`: a UUID as its string;
- :data:`FROM_TEXT`: a marker for ``Annotated[UUID, FROM_TEXT]`` or ``Annotated[Sex, FROM_TEXT]``,
  a UUID or an enum member read from its string form (a number, a boolean or a list is refused);
- :data:`Flag`: a query parameter's ``true`` or ``false`` (not ``1``, ``yes`` or ``on``).

Each also takes the Python object itself (a ``date``, a ``UUID``, an enum member), so code that
builds a request body in Python passes values as it always did. The JSON Schema of each is the
plain type's (``format: date``, ``format: uuid``, the enum's values).
"""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import BeforeValidator, ConfigDict, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

STRICT_BODY: Final = ConfigDict(strict=True, extra="forbid")
"""The configuration of every request body: strict types, and an unknown field is an error
(a typo is refused rather than ignored)."""


def strict_body(*examples: dict[str, Any]) -> ConfigDict:
    """:data:`STRICT_BODY` with ``examples`` of the body (its schema's ``examples``): requests
    the service takes, which a reader copies and schemathesis sends."""
    return ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": list(examples)})


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _day(value: Any) -> Any:
    if isinstance(value, date):
        return value  # a datetime is refused by the strict date check that follows
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise PydanticCustomError("date_type", "Input should be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "date_parsing", "Input should be a real date, not {value}", {"value": value}
        ) from None


def _whole(value: Any) -> Any:
    # JSON Schema's integer is a number without a fraction, 5.0 included; Python's json reads
    # 5.0 as a float, which strict mode refuses. Anything else goes on to the strict check.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JSON_INTEGER: Final = BeforeValidator(_whole)
"""The last metadata of an integer with constraints, ``Annotated[int, Field(ge=0), JSON_INTEGER]``
(or ``int | None``): placed after them, the schema keeps its ``minimum`` and ``maximum``."""

Integer = Annotated[int, JSON_INTEGER]
"""An integer as JSON Schema has it: ``5`` or ``5.0``, never ``5.5``, ``"5"`` or ``false``."""


Day = Annotated[date, BeforeValidator(_day)]
"""A date, sent as ``YYYY-MM-DD`` (ISO 8601's calendar date and nothing else)."""


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise PydanticCustomError("bool_parsing", "Input should be true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]
"""A yes/no query parameter: ``true`` or ``false``."""


class _FromText:
    """See :data:`FROM_TEXT`."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from_string = TypeAdapter(source)
        if isinstance(source, type) and issubclass(source, Enum):
            refusal = _first_message(from_string, "\0")  # pydantic's own "Input should be 'a' or 'b'"
        else:
            refusal = f"Input should be a valid {getattr(source, '__name__', source)}, as a string"

        def from_text(value: Any, strict: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, str):
                try:
                    return from_string.validate_python(value)
                except ValidationError as exc:
                    error = exc.errors()[0]
                    raise PydanticCustomError(error["type"], error["msg"]) from None
            if isinstance(source, type) and isinstance(value, source):
                return strict(value)
            raise PydanticCustomError("string_type", refusal)

        return core_schema.no_info_wrap_validator_function(from_text, handler(source))


def _first_message(adapter: TypeAdapter[Any], value: str) -> str:
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return "Input should be a string"


FROM_TEXT: Final = _FromText()
"""``Annotated[UUID, FROM_TEXT]``, ``Annotated[Sex, FROM_TEXT]``: the value read from its string
form, as strict JSON reads it; anything but a string (or the Python value itself) is refused."""


Id = Annotated[UUID, FROM_TEXT]
"""A UUID, sent as its string (``7c9e6679-7425-40de-944b-e07fc1f90ae7``)."""
