"""Outreach's rules, pure: WHO ASSIST v3 scoring and the screening path (``assist``), the identity
rules of a client (``identity``), the consent and date rules of registration and screening
(``registration``), and the units' rules (``units``). No I/O here."""
