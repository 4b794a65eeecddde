"""A database that can no longer be read or written (a failing disk: chaos's read-only
database fault gave "disk I/O error" on a SELECT) must not stop protection. The store wraps
failed writes in SaveStateFailure (the agent keeps protecting), but a failed write makes it
forget its cached intents and open positions, and reading them again raised the raw sqlite
error: every tick failed before its placements (a maker-entry check reads the intents first),
so a stop cancelled by hand was never replaced. The store now answers what it knew before
the failed write until the database reads again (trader/trade_store.py `_read_again`).

The failing disk is SQLite's authorizer denying every statement (reads and writes alike)."""

import sqlite3

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.test_emergency import open_long
from trader.domain import OrderType


async def test_a_database_that_cannot_be_read_keeps_protecting(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.store.db.conn.set_authorizer(lambda *args: sqlite3.SQLITE_DENY)
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    world.strategy.next = long_signal()
    for _ in range(4):
        await world.step()
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1, "protection keeps running without the database"
    assert world.engine.guard_state.save_failure and not world.engine.entry_allowed(SYMBOL)

    world.store.db.conn.set_authorizer(None)            # the disk is back
    for _ in range(2):
        await world.step()
    assert [p.symbol for p in world.store.open_positions()] == [SYMBOL]
    stops = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1, "no second stop once it reads again"
