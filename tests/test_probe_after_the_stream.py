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

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.positions import KEY, leg_id, make
from tests.stream_ahead import World, a_world, algo_update, stop_request, triggered_over_rest
from trader.clock import SystemClock
from trader.domain import OrderRole, Side
from trader.events import CancelOrder, LegFilled, LegSeen, Policy, ProbeOrder
from trader.evolve import evolve
from trader.exchange_actions import ActionRunner
from trader.lifecycle import step
from trader.position import LegStatus, Position, PositionState

SL = OrderRole.STOP_LOSS
QUANTITY, STOP = Decimal("0.010"), Decimal("49000")
STOP_ID = leg_id(SYMBOL, SL, key=KEY)


def runner(world: World) -> ActionRunner:
    return ActionRunner(world.exchange, world.executor, world.tracker, world.clock)


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
    async with a_world(tmp_path, long=QUANTITY,
                       stop=stop_request(STOP_ID, QUANTITY, STOP)) as world:
        world.streamed(algo_update(STOP_ID, QUANTITY, STOP, streamed, executed))
        world.fake.reshape_answers("GET /fapi/v1/algoOrder", triggered_over_rest)
        position = stop_missing_from_the_open_orders()

        performed = await runner(world).probe(position, ProbeOrder(STOP_ID, SL))

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
    async with a_world(tmp_path, long=QUANTITY,
                       stop=stop_request(STOP_ID, QUANTITY, STOP)) as world:
        world.streamed(algo_update(STOP_ID, QUANTITY, STOP, "FINISHED", str(QUANTITY)))
        world.fake.reshape_answers("GET /fapi/v1/algoOrder", triggered_over_rest)
        position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", STOP,
                        "51000")

        performed = await runner(world).cancel(position, CancelOrder(STOP_ID, SL))

        assert performed.events == [LegFilled(SL, STOP_ID, QUANTITY, complete=True)]
