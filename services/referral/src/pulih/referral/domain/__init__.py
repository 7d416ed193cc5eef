"""The referral's rules, one module per concept; everything here is pure (no store, no broker,
no web framework). Refusals are domain errors (:mod:`pulih.kit.errors` subclasses) with the code
and status the caller sees.

- :mod:`.lifecycle`: where a referral stands and which answer may follow which;
- :mod:`.response_times`: how long a clinic has to answer (programme file);
- :mod:`.clinics`: the directory: kinds of clinic, what they offer, where they serve;
- :mod:`.referring`: who may be referred where, with which consent, on which day;
- :mod:`.answers`: whose answer counts, on which days, and what it does to the referral;
- :mod:`.hand_over`: when the addressed clinic may learn who the client is, and why.
"""
