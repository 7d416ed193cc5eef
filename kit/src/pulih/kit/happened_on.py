"""The day something happened, as a request body tells it: a :data:`~pulih.kit.strict.Day` whose
schema also says the bound of :func:`pulih.kit.dates.not_in_future` that a schema can say.

A service checks such a day with :func:`~pulih.kit.dates.not_in_future`: not before
:data:`~pulih.kit.dates.EARLIEST` (1900-01-01, 422 ``date_too_early``) and not after the regency's
today (422 ``date_in_future``). The first is a constant, and the schema's ``pattern`` says it (with
``format: date``, a year of 1900 or later); the second moves with the regency's clock, which no
schema knows.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from pulih.kit.strict import Day

NOT_BEFORE_1900: Final = "^(19[0-9]{2}|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
"""A date (``YYYY-MM-DD``) of 1900 or later: :data:`~pulih.kit.dates.EARLIEST` as a pattern."""

HappenedOn = Annotated[Day, Field(json_schema_extra={"pattern": NOT_BEFORE_1900})]
"""A day checked with :func:`~pulih.kit.dates.not_in_future`; its schema says it is not before
1900."""
