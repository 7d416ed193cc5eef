"""The plumbing every Pulih service shares: settings, database, outbox and inbox, JetStream,
authentication, HTTP errors, telemetry, and the ``pulih`` command."""
