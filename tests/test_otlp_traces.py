"""Traces, logs and footprint of a real ``pulih up`` regency (issue 14): with
``OTEL_EXPORTER_OTLP_ENDPOINT`` naming a collector (a fake OTLP/HTTP receiver here, decoding the
protobuf it is sent), one screening is one trace there, from outreach's request to rehab applying
the event; the piped output is JSON lines without colour codes, whose access line of that request
carries the same trace id and the route's template; rehab's ``/metrics`` counts the event applied;
and the supervisor stays light."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from outreach_factories import Outreach, screening_body
from system_support import free_regency_env

from pulih.kit.logs import FIRST_FIELDS
from pulih.kit.testing import JWT_SECRET

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SUPERVISOR_MAX_MIB = 60
"""``pulih up`` itself: 113 MiB when it imported every service to list them, some 40 MiB now."""


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str


class Collector:
    """An OTLP/HTTP receiver on a free port: ``POST /v1/traces`` with a protobuf
    ``ExportTraceServiceRequest``; keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                collector.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                with self.lock:
                    self.spans += [
                        ReceivedSpan(attributes.get("service.name", ""), span.name, span.trace_id.hex())
                        for span in scope_spans.spans
                    ]

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def wait_for(what: str, probe: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.2)
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def screen_one_client(outreach_url: str) -> None:
    async with httpx.AsyncClient(base_url=outreach_url, timeout=30) as http:
        o = Outreach(http, None)
        unit_id = await o.unit()
        agent_id = await o.agent(unit_id)
        agent = o.agent_auth(unit_id, agent_id)
        client = await o.client(unit_id, agent)
        assert client.status_code == 201, client.text
        client_id = client.json()["client_id"]
        await o.consent(client_id, agent)
        screened = await http.post(
            f"/v1/clients/{client_id}/screenings?purpose=none",
            headers=agent,
            json=screening_body(agent_id),
        )
        assert screened.status_code == 201, screened.text


def test_one_screening_is_one_trace_across_outreach_and_rehab_at_the_otlp_collector(
    tmp_path: Path, collector: Collector
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _, ports, env = free_regency_env(
        data_dir,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="200",
        PULIH_JWT_SECRET=JWT_SECRET,
    )
    output = tmp_path / "up.log"
    with output.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "pulih.kit.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("regency", lambda: up.poll() is None and "is up" in output.read_text(), timeout=120)
        assert rss_mib(up.pid) < SUPERVISOR_MAX_MIB
        asyncio.run(screen_one_client(f"http://127.0.0.1:{ports['outreach']}"))

        def request_span() -> list[ReceivedSpan]:
            return [
                s
                for s in collector.received()
                if s.service == "pulih-outreach"
                and s.name.startswith("POST /v1/clients/{client_id}/screenings")
            ]

        trace_id = wait_for("span of the screening's request", request_span)[0].trace_id

        def applied_by_rehab() -> list[ReceivedSpan]:
            return [
                s
                for s in collector.received()
                if s.service == "pulih-rehab" and s.trace_id == trace_id and "ClientScreened" in s.name
            ]

        wait_for("span of rehab applying the screening, in the same trace", applied_by_rehab)
        rehab_metrics = httpx.get(f"http://127.0.0.1:{ports['rehab']}/metrics", timeout=10).text
        applied = re.search(
            r'^pulih_consumer_events_total\{consumer="rehab.outreach-events",outcome="applied"\} (\S+)$',
            rehab_metrics,
            re.M,
        )
        assert applied and float(applied.group(1)) >= 1, rehab_metrics
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
        code = up.wait(60)
    assert code == 0, output.read_text()[-3000:]

    text = output.read_text()
    assert "\x1b[" not in text, "no colour codes in piped output"
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all(list(line)[: len(FIRST_FIELDS)] == list(FIRST_FIELDS) for line in lines)
    assert {line["service"] for line in lines} >= {"up", "outreach", "rehab"}
    access = [
        line
        for line in lines
        if line["logger"] == "pulih.access" and line.get("route") == "/v1/clients/{client_id}/screenings"
    ]
    assert len(access) == 1, access
    assert access[0]["trace_id"] == trace_id and access[0]["status"] == 201
    assert access[0]["method"] == "POST" and access[0]["duration_ms"] > 0
    assert "purpose" not in json.dumps(access[0]), "no query string"
    assert not [
        line
        for line in lines
        if line["level"] == "INFO" and re.match(r"(Received|Processed)\b", line["message"])
    ], "FastStream's per-message lines are DEBUG"
