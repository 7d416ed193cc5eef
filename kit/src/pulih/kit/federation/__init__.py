"""Federation: 514 regencies, each its own NATS server and JetStream domain, linked as leaf nodes
to a national hub that sources only their monthly aggregates.

- :mod:`.names`: the names both sides agree on (domains, streams, accounts, users, subjects);
- :mod:`.topology`: the declarative list, ``deploy/federation.toml``;
- :mod:`.secrets`: the passwords, generated once, in a 0600 JSON file;
- :mod:`.accounts` and :mod:`.render`: the NATS server configs of each regency and of the hub,
  least privilege on the link enforced by the servers;
- :mod:`.national_stream`: the hub's ``NATIONAL`` stream, declared idempotently.
"""
