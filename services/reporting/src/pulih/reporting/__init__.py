"""Pulih reporting: what a regency's events add up to.

It reads every event of the regency's stream (outreach, rehab, referral, the clinics' answers),
never calls another service, and builds projections from them: the indicators of EVENTS.md by
unit, village, district and regency, by month and ISO week; QoL change; referral times; unit
phases. Each month it publishes ``AggregateReported``, the only event that leaves a regency, with
small counts suppressed.
"""
