"""A market close's read-back of the position (post-market verify) is taken as the order
tracker merges it with what the user-data stream said (OrderTracker.on_read_position), not
from the REST read alone (trader/market_exit.py `MarketExit.flatten`).

The close's fill brought an ACCOUNT_UPDATE that says the position is flat, "T" its
transaction time (https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Balance-and-Position-Update), while GET /fapi/v3/positionRisk
answered from before the close: the LONG, with an "updateTime" older than that T
(.../trade/rest-api/Position-Information-V3). The close was reported as having left all of
the position (FlattenResult(0.010), no PositionGone): the state machine went on closing a
position already closed.

The docs do not order the stream's event against a REST read: the other order (a stream
that last said LONG, then a read that says flat) is checked too."""

from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.fixtures.binance import payload
from tests.positions import KEY, leg_id, make
from tests.stream_ahead import a_world, account_update
from trader.domain import CloseReason, OrderRole, Side, to_ms
from trader.events import Flatten, FlattenResult, PositionGone
from trader.exchange.binance_event_codec import update_from_account_event
from trader.exchange_actions import ActionRunner
from trader.position import PositionState

QUANTITY = Decimal("0.010")
CLOSE_ID = leg_id(SYMBOL, OrderRole.FLATTEN, key=KEY)


@pytest.mark.parametrize("stream_ahead", [True, False], ids=["stream-ahead", "read-ahead"])
async def test_a_market_close_read_back_older_than_the_stream_reports_the_position_gone(
        tmp_path, stream_ahead):
    async with a_world(tmp_path, long=QUANTITY) as world:
        opened = await world.exchange.position(SYMBOL)
        assert opened.updated_at is not None
        opened_ms = to_ms(opened.updated_at)

        def stream_with_the_close(answer: Any) -> Any:
            # The close's ACCOUNT_UPDATE arrives with its answer: flat, or (the read ahead)
            # one from before the close that still says LONG.
            at = to_ms(world.clock.now()) if stream_ahead else opened_ms
            left = Decimal(0) if stream_ahead else QUANTITY
            world.streamed(update_from_account_event(
                account_update(left, opened.entry_price, at)))
            return answer

        def as_before_the_close(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**payload("position_risk_v3")[0], "symbol": SYMBOL,
                     "positionAmt": str(QUANTITY), "entryPrice": str(opened.entry_price),
                     "updateTime": opened_ms}]

        world.fake.reshape_answers("POST /fapi/v1/order", stream_with_the_close)
        if stream_ahead:
            world.fake.reshape_answers("GET /fapi/v3/positionRisk", as_before_the_close)
        position = make(SYMBOL, Side.BUY, PositionState.CLOSING, QUANTITY, opened.entry_price,
                        "49000", "51000")
        runner = ActionRunner(world.exchange, world.executor, world.tracker, world.clock)

        performed = await runner.flatten(position, Flatten(CloseReason.MANUAL, QUANTITY,
                                                           CLOSE_ID))

        assert world.fake.requests("GET /fapi/v3/positionRisk"), "nothing was read back"
        assert performed.events == [FlattenResult(Decimal(0)), PositionGone()]
