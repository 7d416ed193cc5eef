"""Pulih rehab: the 16-week IBM programme of each client."""
