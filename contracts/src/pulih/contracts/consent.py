"""What a consent means on a given day: the rule every reader of the consent events applies.

A client's consent is given (``ConsentRecorded``) for some scopes from ``given_on``, may expire
after ``expires_on`` and may be withdrawn from a day on (``ConsentWithdrawn``). Outreach, rehab,
referral and any clinic reading the events must agree on when it holds, so the rule is here.
"""

from dataclasses import dataclass
from datetime import date

from pulih.contracts.codes import ConsentScope


@dataclass(frozen=True)
class ConsentTerms:
    """One consent: its scopes, when it was given, and when it expires or was withdrawn."""

    scopes: frozenset[str]
    given_on: date
    expires_on: date | None = None
    withdrawn_on: date | None = None

    def allows(self, scope: ConsentScope | str | None, day: date) -> bool:
        """Whether the consent holds on ``day`` for ``scope`` (for any scope if None).

        It holds from ``given_on`` through ``expires_on`` (the last valid day), and no longer
        on or after the day it was withdrawn.
        """
        if self.given_on > day:
            return False
        if self.withdrawn_on is not None and self.withdrawn_on <= day:
            return False
        if self.expires_on is not None and self.expires_on < day:
            return False
        return scope is None or str(scope) in self.scopes
