"""Outreach's rules, pure: WHO ASSIST v3 scoring and the screening path (``assist``), the identity
rules of a client (``identity``) and of free text (``text``), the date rules of registration,
screening and erasure (``registration``), consent (``consent``), the units' rules
(``units``), possible duplicate registrations (``duplicates``), and when an identity is
disclosed to another service (``disclosure``). No I/O here."""
