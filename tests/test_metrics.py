"""``/metrics`` of a running service (outreach, real NATS): requests by route template and status,
the outbox's backlog and published count, each durable consumer's lag, identity reads granted and
denied; no token needed, and no id from a request's path or query in any label."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from outreach_factories import Outreach
from prometheus_client.parser import text_string_to_metric_families
from system_support import running

from pulih.kit.auth import Role
from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import auth, eventually, make_settings
from pulih.outreach.app import build

pytestmark = pytest.mark.system

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> tuple[str, Samples]:
    """The text of ``/metrics`` (asked without a token) and its samples by name and labels."""
    answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_by_route_and_read_the_outbox_and_consumers(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    app = build(
        make_settings(tmp_path, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db")
    )
    async with running(app) as http:
        o = Outreach(http, app)
        _, before = await scrape(http)
        unit_id = await o.unit()
        stranger = uuid.uuid4()
        refused = await http.get(
            f"/v1/clients/{stranger}",
            params={"purpose": "home visit to Budi"},
            headers=auth(Role.CLINIC, clinic_id="klinik-x"),
        )
        assert refused.status_code == 403, refused.text
        missing = await http.get(f"/no/such/path/{stranger}")
        assert missing.status_code == 404

        text, samples = await eventually(
            lambda: scrape(http),
            until=lambda scraped: (
                value(scraped[1], "pulih_outbox_published_total") >= 1
                and value(scraped[1], "pulih_outbox_backlog") == 0
            ),
        )

    # requests by route template and status; a path no route matches is "unmatched"
    assert value(samples, "pulih_http_requests_total", method="POST", route="/v1/units", status="201") == 1
    assert (
        value(
            samples, "pulih_http_requests_total", method="GET", route="/v1/clients/{client_id}", status="403"
        )
        == 1
    )
    assert value(samples, "pulih_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(samples, "pulih_http_request_duration_seconds_count", method="POST", route="/v1/units") == 1
    # no id, purpose or path of a request in any label
    for secret in (str(stranger), unit_id, "home visit", "/no/such"):
        assert secret not in text
    # the refused read is counted as denied
    assert (
        value(samples, "pulih_identity_reads_total", outcome="denied")
        - value(before, "pulih_identity_reads_total", outcome="denied")
        == 1
    )
    # every durable consumer of the service has its lag, by the consumer's name
    consumers = {dict(labels)["consumer"] for (name, labels) in samples if name == "pulih_consumer_pending"}
    assert consumers and consumers == {c.name for c in app.state.runtime.batch_consumers}
    assert value(samples, "pulih_service_info", service="outreach", regency="3301", version="1.0.0") == 1
    # what has not happened yet is a series at 0, not a missing one (increase() misses a series
    # that appears at 1: the first dead letter, the first pause, the first identity read)
    # (the counts are the process's: other tests in this process may have counted some already)
    for consumer in consumers:
        for outcome in ("applied", "dead_lettered"):
            key = ("pulih_consumer_events_total", (("consumer", consumer), ("outcome", outcome)))
            assert key in samples, f"no {outcome} series for {consumer}"
        assert samples[("pulih_consumer_paused", (("consumer", consumer),))] == 0
    for outcome in ("granted", "denied", "erased", "unavailable"):
        assert ("pulih_identity_reads_total", (("outcome", outcome),)) in samples, f"no {outcome} series"
