"""The reporting service in national mode (``PULIH_REPORTING_MODE=national``): on the hub, it
reads the ``NATIONAL`` stream of every regency's ``AggregateReported`` and adds the figures up by
regency, province and nation (:mod:`.figures`)."""
