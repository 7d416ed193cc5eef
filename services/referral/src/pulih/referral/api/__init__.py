"""Referral's HTTP routes, one module per resource: parse, call the handler, answer."""
