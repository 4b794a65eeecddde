"""A stop-loss (algo STOP_MARKET for the whole position) triggers; its MARKET child fills only
part (too little liquidity) and the rest expires: ALGO_UPDATE FINISHED with "aq" below "q"
(DOCS "user-data-streams/Event-Algo-Order-Update": FINISHED "the triggered conditional order
has been filled or canceled in the matching engine"; aq "executed qty of the actual order").
The price stays past the stop. The agent closes the rest at market within seconds; the
phone must name the reduction as the stop-loss's partial fill (it said "reduced outside the
agent (by hand or another program)") and say nothing of a stop that no longer exists (it
said "could not move the stop-loss ... the current one at 48,908.6 stays: retrying in 2 s").

Found from outside (review 3)."""

import asyncio
import time
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_wire import algo_update
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import OrderType, to_ms
from trader.exchange.websocket_stream import StreamOptions

SYMBOL = "BTCUSDT"


async def stop_filled_in_part(tmp_path, trades_unreadable: bool = False) -> tuple[list[str], str]:
    """The scenario; the alerts' texts and the POSITION_REDUCED text expected.
    `trades_unreadable`: GET /fapi/v1/userTrades fails meanwhile (HTTP 503)."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path, stream_options=StreamOptions()) as agent:
            engine = agent.engine
            assert (await agent.run(CommandKind.LONG)).ok
            await engine.tick()
            stop = next(o for o in fake.sim.open_orders(SYMBOL)
                        if o.type is OrderType.STOP_MARKET)
            algo_id = fake.endpoints.ledger.algo_id(stop)
            part = (stop.quantity * Decimal("0.4")).quantize(Decimal("0.001"))
            if trades_unreadable:
                fake.inject_fault("GET /fapi/v1/userTrades", code=-1000, http_status=503,
                                  times=100)
            await fake._publish(fake.sim.fill_partly(SYMBOL, stop.client_id, part, fake.now()))
            done = fake.sim.order(SYMBOL, stop.client_id)
            fake.sim.cancel(SYMBOL, stop.client_id, fake.now())      # the rest expired, no event
            await fake.hub.send_user([algo_update(done, algo_id, "FINISHED", to_ms(fake.now()),
                                                  "777")])
            await fake.move_price(SYMBOL, stop.trigger_price - Decimal("100"))
            start = time.monotonic()
            while fake.sim.position(SYMBOL).quantity and time.monotonic() - start < 10:
                await engine.tick()
                await asyncio.sleep(0.2)
            assert fake.sim.position(SYMBOL).quantity == 0
            expected = (f"{SYMBOL}: LONG reduced by a partial fill of its stop-loss from "
                        f"{stop.quantity.normalize()} to {(stop.quantity - part).normalize()}; "
                        "protection follows the new size")
            return [a.text for a in engine.store.recent_alerts(50)], expected


async def test_a_stop_filled_in_part_is_named_and_the_rest_closed(tmp_path):
    texts, expected = await stop_filled_in_part(tmp_path)
    assert [t for t in texts if "reduced" in t] == [expected], texts
    assert not [t for t in texts if "stays" in t or "retrying" in t], texts


async def test_the_stops_partial_fill_is_named_from_the_stream_when_the_trades_cannot_be_read(
        tmp_path):
    """The trade list unreadable (or not naming the order): the stream's ALGO_UPDATE, whose
    "aq" says the stop executed part, names it (it read "reduced outside the agent")."""
    texts, expected = await stop_filled_in_part(tmp_path, trades_unreadable=True)
    assert [t for t in texts if "reduced" in t] == [expected], texts
