"""``pulih simulate``: a living IBM programme, months of it, driven through a regency's public APIs
on its services' manual clocks, at the rates of a scenario file (:mod:`.scenario`)."""
