"""Outreach's HTTP routes, one module per resource."""
