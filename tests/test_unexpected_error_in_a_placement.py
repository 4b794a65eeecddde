"""An unexpected exception inside a stop's placement (not a Binance error: our own bug before
the request leaves, or in reading a 200 answer) is settled like an unknown outcome at once:
the order is read back by its client id at the next tick and placed again only if the
exchange does not have it. It used to leave the leg pending until the unknown-outcome window
(recvWindow + 10 s) ran out: a position without a stop for ~15 s. An alert tells the
operator what failed, with the exception.

Through the real engine loop, python-binance and the fake Binance (tests/fakes/, answers
from the documented examples of https://developers.binance.com/docs/derivatives/
usds-margined-futures/trade/rest-api/New-Algo-Order and .../Query-Algo-Order): an adopted
LONG 0.1 protected, its stop cancelled by hand, the replacement's placement raises."""

import time

import pytest

from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, live_stops, running_agent
from trader.domain import OrderType
from trader.exchange import binance_order_codec, binance_requests

NEW_ALGO = "POST /fapi/v1/algoOrder"


@pytest.fixture
async def fake():
    async with FakeBinance(prices={SYMBOL: PRICE}) as server:
        yield server


def fail_once(monkeypatch, module, name: str) -> list[str]:
    """`module.name` raises a RuntimeError the first time it is called; the calls' log."""
    real, calls = getattr(module, name), []

    def failing(*args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError(f"bug in {name}")
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, failing)
    return calls


async def stop_cancelled_by_hand(fake, engine) -> str:
    stop_id = engine.positions[SYMBOL].stop.order.client_id
    await fake.cancel_order_by_hand(SYMBOL, stop_id)
    return stop_id


async def test_a_bug_before_the_request_leaves_is_placed_again_at_the_next_tick(
        fake, tmp_path, monkeypatch):
    async with running_agent(fake, tmp_path, streams=True) as engine:
        calls = fail_once(monkeypatch, binance_requests, "algo_params")
        await stop_cancelled_by_hand(fake, engine)
        cancelled = time.monotonic()
        assert await eventually(lambda: bool(calls), 5.0)
        assert await eventually(lambda: any(
            o.type is OrderType.STOP_MARKET for o in fake.sim.open_orders(SYMBOL)), 10.0)
        naked = time.monotonic() - cancelled
        assert naked < 3.0, f"without a stop for {naked:.2f} s"
        stops = await live_stops(fake)
        assert len(stops) == 1 and stops[0].quantity == engine.positions[SYMBOL].quantity
        alerts = [a.text for a in engine.store.recent_alerts(50)]
        assert any("bug in algo_params" in text for text in alerts), alerts


async def test_a_bug_reading_the_answer_of_a_placed_stop_makes_no_second_stop(
        fake, tmp_path, monkeypatch):
    """The exchange took the order; reading its answer raised: the next tick finds it by
    its client id and keeps it, no second stop is sent."""
    async with running_agent(fake, tmp_path, streams=True) as engine:
        calls = fail_once(monkeypatch, binance_order_codec, "order_from_algo")
        await stop_cancelled_by_hand(fake, engine)
        assert await eventually(lambda: bool(calls), 5.0)
        sent_before = len(fake.requests(NEW_ALGO))
        assert await eventually(lambda: engine.positions[SYMBOL].stop.pending is None
                                and engine.positions[SYMBOL].stop.order is not None, 5.0)
        seen = engine.ticks
        assert await eventually(lambda: engine.ticks >= seen + 3, 5.0)
        stops = await live_stops(fake)
        assert len(stops) == 1, [o.client_id for o in stops]
        assert engine.positions[SYMBOL].stop.order.client_id == stops[0].client_id
        assert len(fake.requests(NEW_ALGO)) == sent_before
