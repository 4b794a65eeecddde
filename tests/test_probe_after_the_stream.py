"""A REST read of one of our orders that knows less than the user-data stream already told
(the order tracker's merged view) never becomes the state machine's event.

Binance's REST answers for a conditional order carry no executed quantity, and one that has
triggered reads TRIGGERED there until its child order finishes ("algoStatus" of
GET /fapi/v1/algoOrder, https://developers.binance.com/docs/derivatives/usds-margined-
futures/trade/rest-api/Query-Algo-Order), while the stream has already pushed the child's
fill (ORDER_TRADE_UPDATE, .../user-data-streams/Event-Order-Update) or ALGO_UPDATE's "aq"
(.../user-data-streams/Event-Algo-Order-Update). The tracker keeps the newer of the two
(trader/order_tracker.py `_newer`); the events came from the REST order, so a probe said
"live, covering all of it" about a stop that had filled: the leg was stepped as a live
order and the fill was missed until the next observation.

Through python-binance against the fake Binance; the stream's events are Binance's
documented ALGO_UPDATE example with the values of this stop, decoded by the adapter's own
codec and fed as the engine feeds them (ExchangeView.on_events)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.binance_harness import SYMBOL, started_exchange
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.positions import KEY, leg_id, make
from trader.clock import SystemClock
from trader.domain import OrderRequest, OrderRole, OrderType, Side, to_ms
from trader.events import CancelOrder, LegFilled, LegSeen, Policy, ProbeOrder
from trader.evolve import evolve
from trader.exchange.binance import BinanceExchange
from trader.exchange.binance_event_codec import update_from_algo_event
from trader.exchange_actions import ActionRunner
from trader.exchange_view import ExchangeView
from trader.executor import Executor
from trader.lifecycle import step
from trader.order_tracker import OrderTracker
from trader.position import LegStatus, Position, PositionState
from trader.trade_store import TradeStore

SL = OrderRole.STOP_LOSS
QUANTITY, STOP = Decimal("0.010"), Decimal("49000")
STOP_ID = leg_id(SYMBOL, SL, key=KEY)


@dataclass
class World:
    fake: FakeBinance
    exchange: BinanceExchange
    tracker: OrderTracker
    view: ExchangeView
    runner: ActionRunner


@asynccontextmanager
async def a_long_with_its_stop(tmp_path: Path) -> AsyncIterator[World]:
    """A LONG 0.010 on the fake with our reduce-only stop (an algo order) resting under it."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, QUANTITY)
        async with started_exchange(fake) as exchange:
            await exchange.place(OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET,
                                              QUANTITY, STOP_ID, SL, trigger_price=STOP,
                                              reduce_only=True))
            store, clock, tracker = TradeStore.open(tmp_path / "t.db"), SystemClock(), \
                OrderTracker()
            executor = Executor(exchange, store, clock)
            try:
                yield World(fake, exchange, tracker,
                            ExchangeView(exchange, executor, tracker, clock),
                            ActionRunner(exchange, executor, tracker, clock))
            finally:
                store.close()


def algo_update(status: str, executed: str) -> dict[str, Any]:
    """The documented ALGO_UPDATE, about our stop: `status`, `executed` of it filled."""
    event = payload("event_algo_update")
    now = to_ms(SystemClock().now())
    event["T"], event["E"] = now, now
    event["o"] |= {"caid": STOP_ID, "o": "STOP_MARKET", "s": SYMBOL, "S": "SELL",
                   "q": str(QUANTITY), "X": status, "ai": "8886774", "ap": "48990",
                   "aq": executed, "act": "MARKET", "tp": str(STOP), "p": "0", "R": True,
                   "rm": "", "tt": now}
    return event


def triggered_over_rest(answer: dict[str, Any]) -> dict[str, Any]:
    """GET /fapi/v1/algoOrder while the child order trades: TRIGGERED, no executed
    quantity (the page documents none)."""
    return answer | {"algoStatus": "TRIGGERED"}


def stop_missing_from_the_open_orders() -> Position:
    """Our record: the stop was absent from a listing, so the state machine probes it."""
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", STOP,
                    "51000")
    stop = position.stop
    assert stop.order is not None and stop.order.client_id == STOP_ID
    absent = evolve(stop.order, status=LegStatus.MISSING, missing_cycles=1)
    return position.with_leg(evolve(stop, order=absent))


@pytest.mark.parametrize(("streamed", "executed", "expected"), [
    ("FINISHED", str(QUANTITY), LegFilled(SL, STOP_ID, QUANTITY, complete=True)),
    ("TRIGGERED", "0.004", LegSeen(SL, STOP_ID, STOP, Decimal("0.006"))),
])
async def test_a_probe_reports_what_the_stream_already_said_not_the_older_rest_answer(
        tmp_path, streamed, executed, expected):
    async with a_long_with_its_stop(tmp_path) as world:
        world.view.on_events([update_from_algo_event(algo_update(streamed, executed))])
        world.fake.reshape_answers("GET /fapi/v1/algoOrder", triggered_over_rest)
        position = stop_missing_from_the_open_orders()

        performed = await world.runner.probe(position, ProbeOrder(STOP_ID, SL))

        assert world.fake.requests("GET /fapi/v1/algoOrder"), "the probe read nothing"
        assert performed.events == [expected]
        stepped = position
        for event in performed.events:
            stepped = step(stepped, event, SystemClock().now(), Policy()).position
        order = stepped.stop.order
        assert order is None or order.status is not LegStatus.LIVE \
            or order.quantity < QUANTITY, f"the step took the stop for live over all of it: {order}"


async def test_a_cancel_read_back_older_than_the_stream_still_reports_the_fill(tmp_path):
    """Cancel -> verify: the read-back is a REST read too; a stop the stream said filled is
    reported filled (a fill that raced the cancel), not dropped as "cancelled"."""
    async with a_long_with_its_stop(tmp_path) as world:
        world.view.on_events([update_from_algo_event(algo_update("FINISHED", str(QUANTITY)))])
        world.fake.reshape_answers("GET /fapi/v1/algoOrder", triggered_over_rest)
        position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", STOP,
                        "51000")

        performed = await world.runner.cancel(position, CancelOrder(STOP_ID, SL))

        assert performed.events == [LegFilled(SL, STOP_ID, QUANTITY, complete=True)]
