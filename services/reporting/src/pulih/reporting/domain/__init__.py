"""The reporting rules, pure: periods, indicators, unit phases, suppression. No I/O here."""
