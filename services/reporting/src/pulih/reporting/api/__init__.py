"""The reporting API: indicators, unit phases, published aggregates, and the dashboard."""
