"""The national view after ``pulih simulate --federation``: the federation's clocks where the
simulation left them, the national reporting's clock moved there, and a wait until every regency's
last simulated month has reached the national view (as ``pulih federation demo`` waits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date

import httpx

from pulih.kit.auth import NATIONAL_SCOPE, Role, issue_token
from pulih.kit.federation.layout import CLOCK_FILE, Layout
from pulih.kit.simulate.api import SimulationError
from pulih.kit.simulate.months import next_month

NATIONAL_SECONDS = 180.0
"""How long the national view may take to show the simulated months (a hub that just came back
retries its sources 10 s, then 20 s… apart)."""


async def close_national(
    secret: str, lay: Layout, periods: list[str], http: httpx.AsyncClient, say: Callable[[str], None]
) -> None:
    """Write the date the regencies' clocks stand on to ``<data dir>/clock`` (where the next
    ``up`` starts them), move the national reporting's clock there (when it is manual), and wait
    until the national view has the last of ``periods`` of every regency whose link is up
    (``say`` tells why one is not waited for)."""
    after = next_month(date.fromisoformat(f"{periods[-1]}-01"))
    (lay.data_dir / CLOCK_FILE).write_text(f"{after}\n")
    admin = issue_token(secret, sub="admin-national-sim", role=Role.ADMIN, regency=NATIONAL_SCOPE)
    headers = {"Authorization": f"Bearer {admin}"}
    clock = await http.get(f"{lay.national_url}/v1/admin/clock", headers=headers)
    if clock.status_code != 200:
        raise SimulationError(f"the national reporting's clock: {clock.status_code} {clock.text}")
    if clock.json()["manual"] and date.fromisoformat(clock.json()["today"]) < after:
        url = f"{lay.national_url}/v1/admin/clock"
        moved = await http.put(url, json={"today": str(after)}, headers=headers)
        if moved.status_code != 200:
            raise SimulationError(f"the national reporting's clock: {moved.status_code} {moved.text}")
    if lay.hub_held:
        say("national view: the hub is held; the months reach it after `pulih federation hub-up`")
        return
    codes = []
    for place in lay.regencies:
        if place.link_cut:
            say(f"national view: r{place.code}'s link is cut; its months arrive after `link-up {place.code}`")
        else:
            codes.append(place.code)
    await wait_national(secret, lay, codes, periods[-1], http)


async def wait_national(
    secret: str, lay: Layout, codes: list[str], last: str, http: httpx.AsyncClient
) -> None:
    """Wait until the national view has month ``last`` of every regency in ``codes``."""
    reader = issue_token(secret, sub="bnn-sim", role=Role.NATIONAL, regency=NATIONAL_SCOPE)
    deadline = time.monotonic() + NATIONAL_SECONDS
    while True:
        answer = await http.get(
            f"{lay.national_url}/v1/national/regencies", headers={"Authorization": f"Bearer {reader}"}
        )
        if answer.status_code != 200:
            raise SimulationError(f"the national view: {answer.status_code} {answer.text}")
        arrived = {r["code"] for r in answer.json()["regencies"] if (r.get("last_period") or "") >= last}
        late = [code for code in codes if code not in arrived]
        if not late:
            return
        if time.monotonic() > deadline:
            raise SimulationError(
                f"the national view does not have {last} of {', '.join(late)} after {NATIONAL_SECONDS:g} s: "
                f"see the hub's log {lay.hub_dir / 'nats-server.log'} and {lay.national_dir / 'logs'}/"
            )
        await asyncio.sleep(0.5)
