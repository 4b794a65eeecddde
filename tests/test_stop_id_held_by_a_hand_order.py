"""A stop-loss cancelled by hand while the agent was down, and an order placed by hand under
its client id (Binance checks a newClientOrderId against open orders only: USDⓈ-M futures
New Order, https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/
rest-api/New-Order, "newClientOrderId: A unique id among open orders"). The restart reads the
open orders and finds the stop's id live, held by a BUY LIMIT: before, the observation took
it as the stop (it looked at the id and the status alone) and the long ran believed
protected with no stop at all. Now the leg is gone for sure: SL_MISSING says so and a stop
is placed again under the next id. (The BUY LIMIT, under an id of the agent's own form,
is then swept as a stray order of its own: trader/orphan_sweep.py `OrphanSweep.sweep`.)"""

from decimal import Decimal

from tests.engine_world import SYMBOL, restart
from tests.test_move_stop_command import stops, world_with_a_long
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.startup import boot


async def test_a_buy_limit_under_the_longs_stop_id_is_no_stop(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    assert position.stop.order is not None
    stop_id = position.stop.order.client_id
    # The agent is down; on the exchange, by hand: the stop cancelled, a BUY LIMIT under
    # its id far below the market.
    await world.paper.cancel(SYMBOL, stop_id)
    low = world.paper.rules(SYMBOL).round_price(position.entry_price / 2, up=False)
    await world.paper.place(OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                                         stop_id, OrderRole.ENTRY, price=low))
    again = restart(world)
    await boot(again.engine)
    for _ in range(3):
        await again.step()
    live_stops = [o for o in await stops(again) if o.side is Side.SELL]
    assert [o.client_id for o in live_stops] != [] and stop_id not in [
        o.client_id for o in live_stops], "the long has a stop of its own again"
    assert live_stops[0].trigger_price == position.stop.trigger_price
    assert again.engine.positions[SYMBOL].stop.order.client_id != stop_id  # type: ignore[union-attr]
    missing = again.alerts("SL_MISSING")
    assert missing and "held by a BUY LIMIT" in missing[0], missing
