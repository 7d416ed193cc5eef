"""The base of every event's data: what the catalogue's tables call an event."""

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

SERVICES = ("outreach", "rehab", "referral", "clinic", "reporting")
"""The services that publish events, as they appear in ``type``, ``source`` and subjects."""

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class Event(BaseModel):
    """The ``data`` of one kind of event: immutable, and no field beyond the catalogue's.

    A concrete event sets ``service_name`` (the service that publishes it) and ``about`` (the
    field whose value becomes the CloudEvent ``subject``); ``version`` starts at 1 and grows
    when a field is renamed or removed (with an upcaster for the old version).

    The publishing service is ``service_name``, not ``service``, because ``ReferredToClinic``
    has a data field called ``service`` (the clinic service referred to).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    service_name: ClassVar[str]
    version: ClassVar[int] = 1
    about: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Check a concrete event's class variables when its class is created."""
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.is_concrete():
            return  # a base shared by the events of one service
        if cls.service_name not in SERVICES:
            raise TypeError(f"{cls.__name__}.service_name must be one of {SERVICES}")
        if cls.about not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.about must name one of its fields")
        if cls.version < 1:
            raise TypeError(f"{cls.__name__}.version must be 1 or more")

    @classmethod
    def is_concrete(cls) -> bool:
        """Whether this class is a real event, not a base shared by a service's events.

        A real event names its service and its subject field, and has fields.
        """
        return hasattr(cls, "service_name") and hasattr(cls, "about") and bool(cls.model_fields)

    @classmethod
    def event_name(cls) -> str:
        """The event's name as in the catalogue, e.g. ``ClientScreened``."""
        return cls.__name__

    @classmethod
    def type_name(cls) -> str:
        """The CloudEvent ``type``, e.g. ``pulih.outreach.ClientScreened.v1``."""
        return f"pulih.{cls.service_name}.{cls.event_name()}.v{cls.version}"

    @classmethod
    def subject_token(cls) -> str:
        """The event's name in snake_case, as used in subjects, e.g. ``client_screened``."""
        return _WORD_BOUNDARY.sub("_", cls.event_name()).lower()

    def subject_id(self) -> str:
        """The CloudEvent ``subject``: the id of what this event is about."""
        return str(getattr(self, self.about))
