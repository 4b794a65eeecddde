"""A triggered stop's child order, whatever its client id: its fills are the stop's.

A conditional order on the Algo Order API places, when it triggers, a MARKET order in the
matching engine (its "child"). ALGO_UPDATE names the child's order id, "ai" ("actual order
id": https://developers.binance.com/docs/derivatives/usds-margined-futures/
user-data-streams/Event-Algo-Order-Update), GET algoOrder "actualOrderId"; GET
/fapi/v1/userTrades names each trade's orderId (the child's) and no client id. Binance does
not document the child's own client id (its ORDER_TRADE_UPDATE "c"): the fake offers the
algo's client id and one of Binance's making (binance_ledger.CHILD_CLIENT_IDS), and both
are driven here, with the child's fill heard before or after ALGO_UPDATE TRIGGERED.

Found by a reviewer (rv16): the adapter ignored ALGO_UPDATE's "ai" and learnt each order id
from the ORDER_TRADE_UPDATE's "c", so a child under an id of its own took the stop's partial
fill for somebody else's: "reduced outside the agent"."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import (
    FAST_STREAMS,
    SYMBOL,
    Agent,
    booted,
    market_up_to_now,
)
from tests.test_reduction_heard_before_its_fill import STOP_PART, reduced, stop_fills_half
from tests.test_stop_fill_during_ban import long_open, ticks

CHILDREN = [("algo", "triggered-first"), ("own", "triggered-first"),
            ("algo", "fill-first"), ("own", "fill-first")]


@asynccontextmanager
async def agent_on(tmp_path, child_client_ids: str,
                   trigger_events: str) -> AsyncIterator[tuple[FakeBinance, Agent]]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}, trigger_events=trigger_events,
                           child_client_ids=child_client_ids) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=FAST_STREAMS) as agent:
            yield fake, agent


def said_once_as_the_stops(told: list[tuple[str, str]]) -> None:
    assert len(told) == 1, told
    [(_, text)] = told
    assert STOP_PART in text and "outside the agent" not in text, text


@pytest.mark.parametrize("child_client_ids,trigger_events", CHILDREN)
async def test_a_partial_stop_fill_heard_on_the_stream_is_the_stops(tmp_path, child_client_ids,
                                                                   trigger_events):
    async with agent_on(tmp_path, child_client_ids, trigger_events) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        await stop_fills_half(fake, agent)
        await ticks(engine, 3)
        said_once_as_the_stops(reduced(engine))


@pytest.mark.parametrize("child_client_ids,trigger_events", CHILDREN)
async def test_a_partial_stop_fill_read_over_rest_is_the_stops(tmp_path, child_client_ids,
                                                              trigger_events):
    """The stream's order events held back: the trade list (orderId: the child's) says who
    reduced it, then the events come and nothing more is said."""
    async with agent_on(tmp_path, child_client_ids, trigger_events) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        fake.hold_order_updates()
        await stop_fills_half(fake, agent)
        await ticks(engine, 2)
        said_once_as_the_stops(reduced(engine))
        await fake.release_order_updates()
        await ticks(engine, 3)
        said_once_as_the_stops(reduced(engine))


@pytest.mark.parametrize("child_client_ids,trigger_events", CHILDREN)
async def test_the_adapter_reads_the_childs_trades_under_the_stops_client_id(
        tmp_path, child_client_ids, trigger_events):
    """After the stream told the trigger and the child's fill: GET /fapi/v1/userTrades'
    row of the child's trade is the stop's fill (the adapter's orderId -> client id)."""
    async with agent_on(tmp_path, child_client_ids, trigger_events) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        stop = engine.positions[SYMBOL].stop.order
        assert stop is not None
        await stop_fills_half(fake, agent)
        await ticks(engine, 2)
        await asyncio.sleep(0.2)
        fills = await engine.exchange.fills(SYMBOL, engine.positions[SYMBOL].opened_at)
        sold = [f for f in fills if f.side.value == "SELL"]
        assert [f.client_id for f in sold] == [stop.client_id]
