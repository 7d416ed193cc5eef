"""The relay's ordered pipeline on its own, with a stand-in broker whose PubAcks the test hands
out: what goes out when, what is held back, what is marked. (Against a real nats-server:
tests/test_relay_order.py.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from pulih.kit.relay_window import OrderedPipeline, OutboxRow, ordering_keys, publish_window
from pulih.kit.testing import eventually


def row(seq: int, subject: str, client: str | None = None) -> OutboxRow:
    """An outbox row whose envelope is about ``subject`` and whose data names ``client``."""
    data: dict[str, Any] = {"on": "2026-03-01"}
    if client is not None:
        data["client_id"] = client
    envelope = {"specversion": "1.0", "id": str(uuid.uuid4()), "subject": subject, "data": data}
    return OutboxRow(seq, "ibm.3301.test", json.dumps(envelope, separators=(",", ":")).encode(), {})


class Broker:
    """Sends are recorded; each one's PubAck (or refusal) comes when the test says."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.answers: dict[int, asyncio.Future[Any]] = {}
        self.most_in_flight = 0

    async def send(self, row: OutboxRow) -> asyncio.Future[Any]:
        self.sent.append(row.seq)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.answers[row.seq] = answer
        self.most_in_flight = max(self.most_in_flight, self.in_flight())
        return answer

    def in_flight(self) -> int:
        return sum(not answer.done() for answer in self.answers.values())

    def ack(self, *seqs: int) -> None:
        for seq in seqs:
            self.answers[seq].set_result({"seq": seq})

    def refuse(self, seq: int) -> None:
        self.answers[seq].set_exception(ConnectionError(f"refused {seq}"))


async def _value(x: Any) -> Any:
    return x


def test_the_keys_are_the_envelope_s_subject_and_the_data_s_client() -> None:
    assert ordering_keys(row(1, "r-1", client="c-1").payload) == {"r-1", "c-1"}
    assert ordering_keys(row(1, "c-1", client="c-1").payload) == {"c-1"}
    assert ordering_keys(row(1, "u-1").payload) == {"u-1"}
    assert ordering_keys(b"not an envelope") is None
    # a pattern inside a string value is escaped, so it is no key
    tricky = json.dumps(
        {"source": '"subject":"x"', "subject": "c-9", "data": {"note": '"client_id":"y"'}},
        separators=(",", ":"),
    )
    assert ordering_keys(tricky.encode()) == {"c-9"}


async def test_a_client_s_next_row_goes_out_only_after_the_puback_of_the_one_before() -> None:
    broker = Broker()
    rows = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c"), row(5, "a")]
    done = asyncio.ensure_future(publish_window(rows, broker.send))
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 4])
    broker.ack(2, 4)
    await asyncio.sleep(0.01)  # a wrong pipeline would send 3 now
    assert broker.sent == [1, 2, 4]
    broker.ack(1)
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 4, 3])
    broker.ack(3)
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 4, 3, 5])
    broker.ack(5)
    outcome = await done
    assert (outcome.acked, outcome.error, outcome.held) == ([1, 2, 3, 4, 5], None, 0)


async def test_a_refused_row_holds_back_its_client_only_and_is_reported() -> None:
    broker = Broker()
    rows = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "b"), row(5, "r", client="a")]
    done = asyncio.ensure_future(publish_window(rows, broker.send))
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2])
    broker.refuse(1)
    broker.ack(2)
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 4])
    broker.ack(4)
    outcome = await done
    assert outcome.acked == [2, 4]
    assert str(outcome.error) == "refused 1"
    assert (outcome.failed, outcome.held) == (1, 2), "3 and 5 (a referral of client a) are held"


async def test_a_row_without_keys_waits_for_all_before_it_and_all_after_wait_for_it() -> None:
    broker = Broker()
    rows = [row(1, "a"), row(2, "b"), OutboxRow(3, "s", b"{}", {}), row(4, "c")]
    done = asyncio.ensure_future(publish_window(rows, broker.send))
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2])
    broker.ack(1, 2)
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 3])
    broker.ack(3)
    await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 3, 4])
    broker.ack(4)
    assert (await done).acked == [1, 2, 3, 4]


async def test_no_more_than_max_in_flight_await_their_puback() -> None:
    broker = Broker()
    rows = [row(n, f"client-{n}") for n in range(1, 11)]
    done = asyncio.ensure_future(publish_window(rows, broker.send, max_in_flight=3))
    while not done.done():
        await eventually(lambda: _value(broker.in_flight() or done.done()))
        broker.ack(*[seq for seq, answer in broker.answers.items() if not answer.done()])
    assert (await done).acked == list(range(1, 11))
    assert broker.most_in_flight == 3
    assert broker.sent == list(range(1, 11)), "rows about different clients go out in outbox order"


async def test_a_row_without_puback_in_time_fails_with_a_timeout_and_holds_its_client() -> None:
    broker = Broker()
    outcome = await publish_window([row(1, "a"), row(2, "a"), row(3, "b")], broker.send, timeout=0.2)
    assert isinstance(outcome.error, TimeoutError)
    assert (outcome.acked, outcome.failed, outcome.held) == ([], 2, 1)


async def test_a_later_window_keeps_the_order_of_an_earlier_one_still_in_flight() -> None:
    broker = Broker()
    pipeline = OrderedPipeline(broker.send)
    try:
        first = pipeline.start([row(1, "a"), row(2, "b")])
        second = pipeline.start([row(3, "a"), row(4, "c")])
        await eventually(lambda: _value(broker.sent), until=lambda s: s == [1, 2, 4])
        broker.refuse(1)
        broker.ack(2, 4)
        assert (await first.outcome()).acked == [2]
        later = await second.outcome()
        assert (later.acked, later.held) == ([4], 1), "client a's row of the second window is held"
        assert pipeline.failed
    finally:
        pipeline.cancel()


@pytest.mark.parametrize("rows", [0, 1])
async def test_an_empty_or_single_window_settles(rows: int) -> None:
    broker = Broker()
    done = asyncio.ensure_future(publish_window([row(1, "a")][:rows], broker.send))
    if rows:
        await eventually(lambda: _value(broker.sent), until=lambda s: s == [1])
        broker.ack(1)
    assert (await done).acked == [1][:rows]
