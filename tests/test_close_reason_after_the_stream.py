"""Why a position closed is decided from what the order tracker knows of its legs, not from
a REST read of them alone (trader/closing.py `Finalizer.finalize`).

The stop's ALGO_UPDATE said FINISHED with all of it executed (the documented event,
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Algo-Order-Update), while GET /fapi/v1/algoOrder still reads it TRIGGERED, with no
executed quantity, until its child order is done (.../trade/rest-api/Query-Algo-Order),
and the trade list does not show the child's trade yet. The close was recorded MANUAL ("by
hand") and the filled stop was cancelled as a leftover; it is the stop-loss.

The docs do not order the stream's event against a REST read: both orders are checked (a
stream that said TRIGGERED, then a read that says FINISHED, is the stop-loss too)."""

from decimal import Decimal

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.positions import KEY, leg_id, make
from tests.stream_ahead import a_world, algo_update, stop_request, triggered_over_rest
from trader.closing import Finalizer
from trader.domain import CloseReason, OrderRole, Side
from trader.evolve import evolve
from trader.position import PositionState

QUANTITY, STOP = Decimal("0.010"), Decimal("49000")
STOP_ID = leg_id(SYMBOL, OrderRole.STOP_LOSS, key=KEY)


def finished_over_rest(answer: dict) -> dict:
    """GET /fapi/v1/algoOrder once the child order is done: FINISHED (the page's statuses)."""
    return answer | {"algoStatus": "FINISHED", "actualOrderId": "8886774",
                     "actualPrice": "48990"}


@pytest.mark.parametrize(("streamed", "read"), [
    ("FINISHED", triggered_over_rest),       # the stream ahead of the read
    ("TRIGGERED", finished_over_rest),       # the read ahead of the stream
])
async def test_a_stop_the_stream_said_filled_closes_the_position_as_stop_loss(
        tmp_path, streamed, read):
    async with a_world(tmp_path, long=QUANTITY,
                       stop=stop_request(STOP_ID, QUANTITY, STOP)) as world:
        executed = str(QUANTITY) if streamed == "FINISHED" else "0"
        world.streamed(algo_update(STOP_ID, QUANTITY, STOP, streamed, executed))
        world.fake.reshape_answers("GET /fapi/v1/algoOrder", read)
        world.fake.clear_request_log()
        position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", STOP,
                        "51000", opened_at=world.clock.now())
        position = position.with_leg(evolve(position.take_profit, order=None))   # the stop only
        finalizer = Finalizer(world.exchange, world.executor, world.tracker, world.store,
                              world.clock)

        final = await finalizer.finalize(position, CloseReason.MANUAL)

        assert world.fake.requests("GET /fapi/v1/algoOrder"), "the stop was not read"
        assert final.position.close_reason is CloseReason.STOP_LOSS
        assert not world.fake.requests("DELETE /fapi/v1/algoOrder"), \
            "the filled stop was cancelled as a leftover"
