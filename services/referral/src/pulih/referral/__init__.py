"""Pulih referral: referrals to clinics, their answers, escalation and identity hand-over."""
