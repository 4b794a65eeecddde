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


async def test_a_stop_filled_in_part_is_named_and_the_rest_closed(tmp_path):
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
            texts = [a.text for a in engine.store.recent_alerts(50)]
            reduced = [t for t in texts if "reduced" in t]
            assert reduced == [f"{SYMBOL}: LONG reduced by a partial fill of its stop-loss from "
                               f"{stop.quantity.normalize()} to "
                               f"{(stop.quantity - part).normalize()}; protection follows the "
                               "new size"], texts
            assert not [t for t in texts if "stays" in t or "retrying" in t], texts
