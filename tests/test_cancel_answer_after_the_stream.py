"""A cancel's answer, and its read-back, are merged into the order tracker with what the
user-data stream said (trader/executor.py `cancel_and_verify`), wherever the cancel comes
from: a leg, a maker re-quote, the orphan sweep, a close's leftovers, /shutdown's entry
cancels. An answer older than a FILLED event does not un-fill the order.

DELETE /fapi/v1/order answers the order as the cancel left it (the documented Response
Example, https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/
rest-api/Cancel-Order: "status": "CANCELED", "executedQty": "0"), while the stream's
ORDER_TRADE_UPDATE (.../user-data-streams/Event-Order-Update) reported the order FILLED
as the cancel went out: the trade won the race on the exchange, the answer was written
before it reached us. The read-back (GET /fapi/v1/order, .../trade/rest-api/Query-Order)
is served from the same moment: CANCELED, nothing executed. Before, the record and the
intent were taken from the read alone (CANCELED, EXPIRED with nothing filled), and
/shutdown's entry cancels told the operator "cancelled" of an entry that had filled.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.fixtures.binance import payload
from tests.positions import make
from tests.stream_ahead import PRICE, World, a_world, engine_on_fake, order_update
from trader.commands import Command, CommandKind
from trader.control_sleep import shutdown
from trader.domain import ClientId, IntentStatus, OrderRole, OrderStatus, Side, plain
from trader.exchange.base import ExchangeError
from trader.intents import quote_intent
from trader.position import PositionState

PLANNED = Decimal("0.010")
BID = Decimal("49999.5")                   # the fake's best bid at PRICE: the quote's price
KEY = "cx1"
QUOTE_ID = str(ClientId(SYMBOL, KEY, OrderRole.ENTRY, 1))
CANCEL = "DELETE /fapi/v1/order"


def documented_cancel_answer(client_id: str) -> dict[str, Any]:
    """The page's Response Example with our quote's values: CANCELED, nothing executed."""
    answer = payload("order_cancel")
    for optional in ("activatePrice", "priceRate"):     # trailing stops only (the page)
        answer.pop(optional)
    return answer | {"clientOrderId": client_id, "symbol": SYMBOL, "side": "BUY",
                     "positionSide": "BOTH", "type": "LIMIT", "origType": "LIMIT",
                     "timeInForce": "GTX", "origQty": plain(PLANNED), "price": plain(BID),
                     "stopPrice": "0", "status": "CANCELED", "executedQty": "0",
                     "cumQty": "0", "cumQuote": "0"}


def filled_during_the_cancel(streamed: Callable[[], None],
                             client_id: str) -> Callable[[Any], Any]:
    def answer(_: Any) -> Any:
        streamed()
        return documented_cancel_answer(client_id)
    return answer


def stream_says_filled(feed: Callable[..., None], client_id: str) -> Callable[[], None]:
    return lambda: feed([order_update(client_id, Side.BUY, "LIMIT", PLANNED, "FILLED",
                                      PLANNED, BID, BID)])


async def a_resting_quote(world: World) -> None:
    position = make(SYMBOL, Side.BUY, quantity=PLANNED, entry=PRICE, key=KEY)
    result = await world.executor.submit(quote_intent(position, QUOTE_ID, BID, PLANNED,
                                                      world.clock.now()))
    assert result.order is not None and result.order.status is OrderStatus.NEW


async def test_a_cancel_answer_older_than_the_fill_does_not_unfill_the_order(tmp_path):
    async with a_world(tmp_path) as world:
        await a_resting_quote(world)
        world.fake.reshape_answers(CANCEL, filled_during_the_cancel(
            stream_says_filled(lambda updates: world.streamed(*updates), QUOTE_ID),
            QUOTE_ID))

        final = await world.executor.cancel_and_verify(SYMBOL, QUOTE_ID)

        assert world.fake.requests(CANCEL), "not cancelled"
        assert final is not None and (final.status, final.filled_qty) == (OrderStatus.FILLED,
                                                                          PLANNED)
        tracked = world.tracker.get(QUOTE_ID)
        assert tracked is not None and tracked.order.status is OrderStatus.FILLED
        record = world.store.order(QUOTE_ID)
        assert record is not None and record.status is OrderStatus.FILLED, f"record: {record}"
        intent = world.store.intent(QUOTE_ID)
        assert intent is not None and intent.status is IntentStatus.FILLED, intent


async def test_a_cancel_answer_alone_tells_the_tracker_the_order_is_over(tmp_path):
    """The read-back after the cancel is refused: the cancel's own answer, CANCELED, is
    what is known; the tracker no longer takes the order for live."""
    async with a_world(tmp_path) as world:
        await a_resting_quote(world)
        world.fake.inject_fault("GET /fapi/v1/order", http_status=400, code=-1022, times=1)

        with pytest.raises(ExchangeError):      # the read-back's refusal reaches the caller
            await world.executor.cancel_and_verify(SYMBOL, QUOTE_ID)

        tracked = world.tracker.get(QUOTE_ID)
        assert tracked is not None and not tracked.live, f"still live: {tracked}"


async def resting_maker_entry(world: Any) -> str:
    """A maker LONG entry of PLANNED with its first quote resting at the bid."""
    position = await world.engine.entries.send(world.planned_long(PLANNED, "sd1"))
    assert position is not None and position.state is PositionState.ENTERING
    quote = world.fake.requests("POST /fapi/v1/order")[-1].params
    assert quote["timeInForce"] == "GTX"
    return str(quote["newClientOrderId"])


def shutdown_command(world: Any) -> Command:
    return Command(CommandKind.SHUTDOWN, "sd-1", world.engine.clock.now())


async def test_shutdown_entry_cancel_feeds_the_tracker(tmp_path):
    async with engine_on_fake(tmp_path, entry_mode="maker", maker_timeout_seconds=60) as world:
        quote_id = await resting_maker_entry(world)

        result = await shutdown(world.engine, shutdown_command(world))

        assert world.fake.requests(CANCEL), "the entry was not cancelled"
        # a maker entry's quote is given up and said so (trader/control_sleep.py)
        assert any(f"its quote {quote_id} was cancelled" in line for line in result.lines), \
            result.lines
        tracked = world.engine.tracker.get(quote_id)
        assert tracked is not None and not tracked.live, f"still taken for live: {tracked}"


async def test_shutdown_does_not_call_an_entry_that_filled_during_its_cancel_cancelled(
        tmp_path):
    async with engine_on_fake(tmp_path, entry_mode="maker", maker_timeout_seconds=60) as world:
        quote_id = await resting_maker_entry(world)
        world.fake.reshape_answers(CANCEL, filled_during_the_cancel(
            stream_says_filled(world.engine.view.on_events, quote_id), quote_id))

        result = await shutdown(world.engine, shutdown_command(world))

        line = next(line for line in result.lines if quote_id in line)
        assert "filled" in line and "CANCELED" not in line, line
        record = world.store.order(quote_id)
        assert record is not None and record.status is OrderStatus.FILLED, f"record: {record}"


def test_shutdown_says_a_part_filled_before_the_cancel_is_an_open_position() -> None:
    """The cancel came after part of the entry filled (Binance: CANCELED with an executedQty,
    .../trade/rest-api/Cancel-Order): the line said "cancelled after 0.004 of 0.01 filled"
    and nothing of the position that part opened."""
    from trader.control_sleep import _entry_cancelled_line
    from trader.domain import Order, OrderType

    final = Order(SYMBOL, QUOTE_ID, Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, PLANNED,
                  Decimal("0.004"), BID, price=BID)
    line = _entry_cancelled_line(SYMBOL, QUOTE_ID, final)
    assert line == (f"{SYMBOL}: entry order cancelled after 0.004 of 0.01 filled, the exchange "
                    f"says CANCELED: the position of 0.004 is open, protection places its stop "
                    f"({QUOTE_ID})"), line
    nothing = Order(SYMBOL, QUOTE_ID, Side.BUY, OrderType.LIMIT, OrderStatus.CANCELED, PLANNED,
                    Decimal("0"), Decimal("0"), price=BID)
    assert "position" not in _entry_cancelled_line(SYMBOL, QUOTE_ID, nothing)
