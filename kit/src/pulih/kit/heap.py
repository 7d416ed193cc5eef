"""The Python heap of a long-running service: what its startup built is frozen, so the garbage
collector stops walking it.

A service's startup leaves some 180,000 objects that live as long as the process (modules,
SQLAlchemy mappers and compiled statements, pydantic validators, FastAPI routes). CPython's
oldest-generation collection walks every one of them: measured at 350 ms on the 2-core box under
load, every request in flight waiting that long, a few times an hour. :func:`settle_heap`, once the
service is wired, collects once and moves those objects to the permanent generation
(:func:`gc.freeze`); later full collections walk only what was made since, a few ms.

Once per process: a process that starts many apps (the tests) pays the collection once, and
freezes only the first app's objects.
"""

from __future__ import annotations

import gc

_settled = False


def settle_heap() -> None:
    """Collect what startup left behind, then freeze the rest out of the collector's walks
    (the first time only)."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
