"""The executor's record of an order (and the settlement of its intent) is what the order
tracker knows after a REST read of it, merged with what the database knew, never the read
alone (trader/executor.py `Executor.refresh`, `Executor.probe`).

A maker quote (a LIMIT BUY of 0.010, post-only) traded 0.004, then was cancelled. A read
of it over GET /fapi/v1/order (https://developers.binance.com/docs/derivatives/
usds-margined-futures/trade/rest-api/Query-Order) served from before the trade says
CANCELED with executedQty 0, while the user-data stream's ORDER_TRADE_UPDATE
(.../user-data-streams/Event-Order-Update) or an earlier read already said 0.004 traded.
Saved as read, the quote's intent was journaled EXPIRED with nothing filled, and after a
restart (an empty tracker) the 0.004 was lost for good: the maker quoter reads the saved
record of a resolved quote (trader/maker_progress.py `_order_of`).

The orders of events: the stream first, an earlier REST read first, and either with a
restart between the first read and the stale one (the tracker is seeded from the record).
"""

from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.positions import make
from tests.stream_ahead import PRICE, World, a_world, order_update
from trader.domain import ClientId, IntentStatus, OrderRole, OrderStatus, Side
from trader.intents import quote_intent

PLANNED, TRADED = Decimal("0.010"), Decimal("0.004")
BID = Decimal("49999.5")                   # the fake's best bid at PRICE: the quote's price
KEY = "rec1"
QUOTE_ID = str(ClientId(SYMBOL, KEY, OrderRole.ENTRY, 1))
READ = "GET /fapi/v1/order"


def partly_filled_over_rest(answer: dict[str, Any]) -> dict[str, Any]:
    """GET /fapi/v1/order once the quote traded TRADED of it at BID: PARTIALLY_FILLED."""
    return answer | {"status": "PARTIALLY_FILLED", "executedQty": str(TRADED),
                     "cumQuote": str(TRADED * BID), "avgPrice": str(BID)}


async def a_resting_quote(world: World) -> None:
    position = make(SYMBOL, Side.BUY, quantity=PLANNED, entry=PRICE, key=KEY)
    result = await world.executor.submit(quote_intent(position, QUOTE_ID, BID, PLANNED,
                                                      world.clock.now()))
    assert result.order is not None and result.order.status is OrderStatus.NEW


async def the_fill_is_known(world: World, first: str) -> None:
    if first == "stream":
        world.streamed(order_update(QUOTE_ID, Side.BUY, "LIMIT", PLANNED, "PARTIALLY_FILLED",
                                    TRADED, BID, BID))
        await world.executor.refresh(SYMBOL, QUOTE_ID)      # still resting: read NEW
    else:
        world.fake.reshape_answers(READ, partly_filled_over_rest)
        read = await world.executor.refresh(SYMBOL, QUOTE_ID)
        assert read is not None and read.filled_qty == TRADED


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "restart-between"])
@pytest.mark.parametrize("first", ["stream", "rest"], ids=["stream-first", "rest-first"])
async def test_a_stale_read_does_not_take_back_a_fill_from_the_record(tmp_path, first,
                                                                      restart):
    async with a_world(tmp_path) as world:
        await a_resting_quote(world)
        await the_fill_is_known(world, first)
        if restart:
            world = world.restarted()
        await world.fake.cancel_order_by_hand(SYMBOL, QUOTE_ID)  # the fake: executedQty 0

        read = await world.executor.refresh(SYMBOL, QUOTE_ID)

        assert world.fake.requests(READ)
        assert read is not None and (read.status, read.filled_qty) == (OrderStatus.CANCELED,
                                                                       TRADED)
        record = world.store.order(QUOTE_ID)
        assert record is not None and record.filled_qty == TRADED, f"record: {record}"
        intent = world.store.intent(QUOTE_ID)
        assert intent is not None and intent.status is IntentStatus.FILLED, \
            f"journaled {intent.status if intent else None} with nothing filled"


async def test_a_probe_settles_a_lost_answer_with_the_fill_the_stream_reported(tmp_path):
    """The placement's answer was lost (the intent stays SENT); the stream reported the
    trade, and the probe's read, older, says CANCELED with nothing executed."""
    async with a_world(tmp_path) as world:
        world.fake.inject_fault("POST /fapi/v1/order", http_status=503, execute=True)
        await a_resting_quote_whose_answer_is_lost(world)
        world.streamed(order_update(QUOTE_ID, Side.BUY, "LIMIT", PLANNED, "PARTIALLY_FILLED",
                                    TRADED, BID, BID))
        await world.fake.cancel_order_by_hand(SYMBOL, QUOTE_ID)
        sent = world.store.intent(QUOTE_ID)
        assert sent is not None and sent.status is IntentStatus.SENT

        probed = await world.executor.probe(sent)

        assert probed.status is IntentStatus.FILLED, f"journaled {probed.status}"
        record = world.store.order(QUOTE_ID)
        assert record is not None and record.filled_qty == TRADED, f"record: {record}"


async def a_resting_quote_whose_answer_is_lost(world: World) -> None:
    position = make(SYMBOL, Side.BUY, quantity=PLANNED, entry=PRICE, key=KEY)
    result = await world.executor.submit(quote_intent(position, QUOTE_ID, BID, PLANNED,
                                                      world.clock.now()))
    assert result.order is None, f"answered: {result}"
