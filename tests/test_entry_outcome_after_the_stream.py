"""An entry whose answer was lost is decided from what the order tracker knows of it (the
REST read merged with what the stream said: OrderTracker.learned), not from the read alone
(trader/entry_sender.py `outcome`).

The entry's ORDER_TRADE_UPDATE said FILLED (or EXPIRED, nothing filled: the documented
event, https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Order-Update), while GET /fapi/v1/order, served from before it,
still reads NEW with nothing executed (.../trade/rest-api/Query-Order). The probe waited
("may still land") on a position already open and unprotected, or on an entry already over.

The docs do not order the stream's event against a REST read: both orders are checked (a
stream that said NEW, then a read that says FILLED, is filled too)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.stream_ahead import as_placed_over_rest, engine_on_fake, order_update
from trader.domain import IntentStatus, Side
from trader.engine import Engine
from trader.events import EntryFailed, EntryFilled
from trader.position import Position, PositionState

QUANTITY = Decimal("0.010")
FILL_PRICE = Decimal("50005.5")      # where the fake fills a MARKET buy of it


def fresh(answer: dict[str, Any]) -> dict[str, Any]:
    return answer


@asynccontextmanager
async def an_entry_whose_answer_was_lost(tmp_path: Path, reached: bool = True
                                         ) -> AsyncIterator[tuple[FakeBinance, Engine,
                                                                  Position, str]]:
    """A MARKET entry sent through the engine whose answer was lost (the connection
    dropped): ENTERING, its intent SENT. `reached`: the order got to the exchange (and
    filled there) before the connection dropped."""
    async with engine_on_fake(tmp_path) as world:
        fake, engine = world.fake, world.engine
        fake.inject_fault("POST /fapi/v1/order", drop_connection=True, execute=reached)
        position = await engine.entries.send(world.planned_long(QUANTITY, "lost1"))
        assert position is not None and position.state is PositionState.ENTERING
        entry_id = fake.requests("POST /fapi/v1/order")[-1].params["newClientOrderId"]
        assert world.store.intent(entry_id).status is IntentStatus.SENT
        yield fake, engine, position, entry_id


@pytest.mark.parametrize(("streamed", "filled", "read", "expected"), [
    ("FILLED", QUANTITY, as_placed_over_rest, EntryFilled(QUANTITY, FILL_PRICE, complete=True)),
    ("EXPIRED", Decimal(0), as_placed_over_rest,
     EntryFailed("entry EXPIRED without a fill", late=True)),
    ("NEW", Decimal(0), fresh, EntryFilled(QUANTITY, FILL_PRICE, complete=True)),
], ids=["stream-filled-read-older", "stream-expired-read-older", "read-newer-than-stream"])
async def test_an_entry_whose_answer_was_lost_is_decided_by_what_the_stream_said(
        tmp_path, streamed, filled, read, expected):
    async with an_entry_whose_answer_was_lost(tmp_path) as (fake, engine, position, entry_id):
        engine.view.on_events([order_update(entry_id, Side.BUY, "MARKET", QUANTITY,
                                            streamed, filled, FILL_PRICE)])
        fake.reshape_answers("GET /fapi/v1/order", read, times=2)

        event = await engine.entries.outcome(position)

        assert fake.requests("GET /fapi/v1/order"), "the entry was not read"
        assert event == expected


async def test_an_entry_the_stream_said_filled_is_filled_while_rest_does_not_find_it_yet(
        tmp_path):
    """GET /fapi/v1/order answers -2013 "Order does not exist" (a read served from before
    the order): within recvWindow the probe would wait ("may still land"), but the stream
    has reported it filled."""
    async with an_entry_whose_answer_was_lost(tmp_path, reached=False) as (
            fake, engine, position, entry_id):
        engine.view.on_events([order_update(entry_id, Side.BUY, "MARKET", QUANTITY, "FILLED",
                                            QUANTITY, FILL_PRICE)])

        event = await engine.entries.outcome(position)

        assert fake.requests("GET /fapi/v1/order"), "the entry was not read"
        assert event == EntryFilled(QUANTITY, FILL_PRICE, complete=True)
