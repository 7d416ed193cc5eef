"""When a consent holds: the rule outreach, rehab, referral and clinics share."""

from datetime import date

from pulih.contracts import ConsentTerms
from pulih.contracts.codes import ConsentScope


def test_consent_covers_its_scopes_from_given_until_expiry_or_withdrawal() -> None:
    consent = ConsentTerms(frozenset({"referral"}), date(2026, 2, 1), expires_on=date(2026, 6, 30))
    assert consent.allows(ConsentScope.REFERRAL, date(2026, 2, 1))
    assert consent.allows(ConsentScope.REFERRAL, date(2026, 6, 30))  # the expiry day is the last valid one
    assert not consent.allows(ConsentScope.REFERRAL, date(2026, 7, 1))
    assert not consent.allows(ConsentScope.REFERRAL, date(2026, 1, 31))
    assert not consent.allows(ConsentScope.IDENTITY_TO_CLINIC, date(2026, 3, 1))
    withdrawn = ConsentTerms(frozenset({"referral"}), date(2026, 2, 1), withdrawn_on=date(2026, 3, 1))
    assert withdrawn.allows(ConsentScope.REFERRAL, date(2026, 2, 28))
    assert not withdrawn.allows(ConsentScope.REFERRAL, date(2026, 3, 1))


def test_without_a_scope_any_consent_that_holds_that_day_counts() -> None:
    consent = ConsentTerms(frozenset({"programme"}), date(2026, 2, 1))
    assert consent.allows(None, date(2026, 2, 1)) and consent.allows("programme", date(2030, 1, 1))
    assert not consent.allows(None, date(2026, 1, 31))
