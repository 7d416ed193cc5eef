"""Rehab's HTTP routes, one module per resource: parse the request, run the use case, answer."""
