"""Rehab's rules, pure: the programme as data (``programme``), one enrolment's timeline and how
time and referrals move it (``timeline``), who may be enrolled (``eligibility``), when a session
or an assessment may be recorded (``sessions``, ``assessments``, ``follow_ups``), WHOQOL-BREF
scoring (``whoqol``) and an agent's worklist (``worklist``). No I/O here; refusals are the kit's
errors, so a route or a consumer passes them on unchanged."""
