"""A maker entry's quote read back over REST is taken as the order tracker merges it with
what the user-data stream said (OrderTracker.learned), never from the read alone
(trader/maker_quoter.py): fills the stream reported before the read are not lost, and the
next quote is for what is left, not for all of it again.

The quote's ORDER_TRADE_UPDATE said PARTIALLY_FILLED, 0.004 of 0.010 traded (the documented
event, https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Order-Update), while GET /fapi/v1/order (.../trade/rest-api/
Query-Order) answers without that trade: CANCELED (cancelled by hand, or by our re-quote's
cancel) or NEW (served from before the trade), executedQty 0. Two ways the quoter reads it:
- the quote went missing from the open orders, so the next step reads it by client id;
- the re-quote cancels it and reads it back, the stream's trade arriving during the cancel.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.binance_harness import SYMBOL
from tests.fakes.binance_server import FakeBinance
from tests.stream_ahead import PRICE, as_placed_over_rest, engine_on_fake, order_update
from trader.alerter import Alerter
from trader.domain import Side
from trader.engine import Engine
from trader.events import EntryFilled
from trader.position import Position, PositionState

PLANNED, TRADED = Decimal("0.010"), Decimal("0.004")
BID = Decimal("49999.5")                   # the fake's best bid at PRICE: the quote's price
NEW_ORDER = "POST /fapi/v1/order"


@dataclass
class Quoting:
    fake: FakeBinance
    engine: Engine
    position: Position
    quote_id: str

    def stream_says_partly_filled(self) -> None:
        self.engine.view.on_events([order_update(self.quote_id, Side.BUY, "LIMIT", PLANNED,
                                                 "PARTIALLY_FILLED", TRADED, BID, BID)])

    async def next_step(self) -> EntryFilled | None:
        view = await self.engine.view.view(SYMBOL)
        self.position, event = await self.engine.entries.resolve(self.position, view)
        assert event is None or isinstance(event, EntryFilled)
        return event


@asynccontextmanager
async def a_resting_quote(tmp_path: Path) -> AsyncIterator[Quoting]:
    """A maker LONG entry of PLANNED: its first quote rests at the bid (ENTERING)."""
    async with engine_on_fake(tmp_path, entry_mode="maker", maker_timeout_seconds=60) as world:
        fake, engine = world.fake, world.engine
        position = await engine.entries.send(world.planned_long(PLANNED, "mq1"))
        assert position is not None and position.state is PositionState.ENTERING
        quote = fake.requests(NEW_ORDER)[-1].params
        assert (quote["timeInForce"], quote["price"]) == ("GTX", str(BID))
        yield Quoting(fake, engine, position, quote["newClientOrderId"])


def left_at(price: Decimal) -> Decimal:
    """What the plan (PLANNED at PRICE, stop 49,500: tests/stream_ahead.py) may still buy at
    `price` once TRADED filled at BID, as the planner counts a loss at the stop (the price
    distance plus the 0.05 % taker fee at both ends), down to the step, at most the rest."""
    stop, fee = Decimal("49500"), Decimal("0.0005")

    def loss(at: Decimal) -> Decimal:
        return at - stop + fee * (at + stop)
    left = PLANNED * loss(PRICE) - TRADED * loss(BID)
    return min(PLANNED - TRADED, (left / loss(price)).quantize(Decimal("0.001"),
                                                                  rounding=ROUND_DOWN))


def next_quote(fake: FakeBinance) -> dict[str, Any]:
    return fake.requests(NEW_ORDER)[-1].params


def as_the_fake_answers(answer: Any) -> Any:
    return answer


@pytest.mark.parametrize(("read", "requoted"), [
    (as_the_fake_answers, True),      # CANCELED, executedQty 0: the rest is quoted again
    (as_placed_over_rest, False),     # NEW, executedQty 0: still resting at the touch
], ids=["read-cancelled", "read-as-placed"])
async def test_a_quote_read_again_keeps_the_fills_the_stream_reported(tmp_path, read,
                                                                      requoted):
    async with a_resting_quote(tmp_path) as quoting:
        quoting.stream_says_partly_filled()
        await quoting.fake.cancel_order_by_hand(SYMBOL, quoting.quote_id)   # not listed open
        quoting.fake.reshape_answers("GET /fapi/v1/order", read)
        quoting.fake.clear_request_log()

        event = await quoting.next_step()

        assert quoting.fake.requests("GET /fapi/v1/order"), "the quote was not read"
        assert event == EntryFilled(TRADED, BID, complete=False)
        quotes = quoting.fake.requests(NEW_ORDER)
        assert len(quotes) == int(requoted)
        if requoted:
            assert Decimal(quotes[-1].params["quantity"]) == PLANNED - TRADED


async def test_a_requote_cancel_read_back_keeps_the_fill_that_raced_it(tmp_path):
    async with a_resting_quote(tmp_path) as quoting:
        await quoting.fake.move_price(SYMBOL, PRICE + 20)      # the touch left the quote

        def stream_during_the_cancel(answer: Any) -> Any:
            quoting.stream_says_partly_filled()
            return answer

        quoting.fake.reshape_answers("DELETE /fapi/v1/order", stream_during_the_cancel)

        event = await quoting.next_step()

        assert quoting.fake.requests("DELETE /fapi/v1/order"), "the quote was not cancelled"
        assert event == EntryFilled(TRADED, BID, complete=False)
        quote = next_quote(quoting.fake)
        assert quote["newClientOrderId"] != quoting.quote_id, "no re-quote"
        # what is left, at most: the planned rest as much of it as the plan's risk budget
        # leaves at the higher bid (0.005 there; the budget counts the filled 0.004 too)
        assert Decimal(quote["quantity"]) == left_at(Decimal(quote["price"]))


async def test_a_restart_keeps_the_fill_a_stale_read_missed(tmp_path):
    """The read above, then a restart (the tracker starts empty): the quote's record and
    intent were saved from the read alone (CANCELED, EXPIRED, nothing filled), and the
    restarted agent counted nothing filled. Saved from the merge, the fill survives."""
    async with a_resting_quote(tmp_path) as quoting:
        quoting.stream_says_partly_filled()
        await quoting.fake.cancel_order_by_hand(SYMBOL, quoting.quote_id)
        assert await quoting.next_step() == EntryFilled(TRADED, BID, complete=False)
        old = quoting.engine
        quoting.engine = Engine(old.settings, old.exchange, old.store, old.clock,
                                Alerter(old.store))

        assert await quoting.next_step() == EntryFilled(TRADED, BID, complete=False)
        assert len(quoting.fake.requests(NEW_ORDER)) == 2, "quoted again after the restart"
