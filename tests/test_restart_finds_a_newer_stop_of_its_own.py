"""A restart on a known database that missed the agent's newest stop (found by the chaos run
with a read-only database under an operator's /sl): while nothing could be written, /sl
placed the new stop under `...-sl2` and cancelled sl1, but sl2 never reached the journal.
The process was killed and restarted on the same database: it knew only sl1, saw it gone,
planned the stop at the OLD level and placed it under the next id its journal gave, sl2
again (one client id on two orders, and the acknowledged move undone).

The exchange holds our own orders newer than the journal: the restart adopts the newest as
the leg (its trigger is the operator's level, or newer), retires the older ones, and never
sends an id the exchange already holds."""

import sqlite3
from collections import Counter
from decimal import Decimal
from typing import Any

from tests.engine_world import SYMBOL, World, restart
from tests.test_move_stop_command import cancels_refused, stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import ClientId, OrderRole
from trader.evolve import evolve
from trader.position import Position
from trader.startup import boot

WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)


def writes_refused(action: int, *_: Any) -> int:
    """SQLite's authorizer: every write refused (a disk gone read-only), reads allowed."""
    return sqlite3.SQLITE_DENY if action in WRITES else sqlite3.SQLITE_OK


def sent_ids(world: World) -> list[str]:
    """The client id of every placement the exchange took from now on (one list shared by
    the worlds of a restart: the paper exchange plays the remote account)."""
    real_place, sent = world.paper.place, []

    async def place(request):  # type: ignore[no-untyped-def]
        order = await real_place(request)
        sent.append(request.client_id)
        return order
    world.paper.place = place  # type: ignore[method-assign]
    return sent


async def move_unjournaled(world: World) -> tuple[Position, Decimal, str]:
    """/sl to half-way between the stop and the entry while every write is refused: the
    position, the level and the new stop's id (sl2). The writes stay refused."""
    position = world.engine.positions[SYMBOL]
    moved = world.paper.rules(SYMBOL).round_price(
        (position.stop.trigger_price + position.entry_price) / 2, up=False)
    world.store.db.conn.set_authorizer(writes_refused)
    await world.command(CommandKind.SL, symbol=SYMBOL, price=moved)
    return position, moved, str(ClientId(SYMBOL, position.key, OrderRole.STOP_LOSS, 2))


async def restarted(world: World, sent: list[str]) -> World:
    """Killed and booted on the same database, three ticks run: no id was sent twice."""
    again = restart(world)
    await boot(again.engine)
    for _ in range(3):
        await again.step()
    twice = [cid for cid, n in Counter(sent).items() if n > 1]
    assert twice == [], f"sent again under an id the exchange holds: {twice}"
    return again


async def test_a_restart_adopts_the_moved_stop_its_journal_missed(tmp_path):
    world = await world_with_a_long(tmp_path)
    stop_order = world.engine.positions[SYMBOL].stop.order
    assert stop_order is not None
    first = stop_order.client_id
    sent = sent_ids(world)
    position, moved, newer = await move_unjournaled(world)
    for _ in range(2):
        await world.step()
    assert [(o.client_id, o.trigger_price) for o in await stops(world)] == [(newer, moved)]
    assert world.engine.guard_state.save_failure, "the move was not journaled"
    world.store.db.conn.set_authorizer(None)    # killed; the disk is back for the restart
    assert world.store.position(SYMBOL, position.key).stop.order.client_id == first

    again = await restarted(world, sent)
    assert [(o.client_id, o.trigger_price) for o in await stops(again)] == [(newer, moved)]
    stop = again.engine.positions[SYMBOL].stop
    assert stop.trigger_price == moved, "the acknowledged move was undone"
    journaled = again.store.position(SYMBOL, position.key)
    assert journaled is not None and journaled.stop.order is not None
    assert journaled.stop.order.client_id == newer and journaled.stop.trigger_price == moved
    assert journaled.seq[OrderRole.STOP_LOSS.value] >= 2


async def test_a_restart_between_the_moved_stop_and_the_old_ones_cancel_keeps_the_move(
        tmp_path):
    """Killed after sl2 was placed and before sl1's cancel went through: both are live, the
    journal names sl1. sl2 is the operator's level: kept, and sl1 cancelled."""
    world = await world_with_a_long(tmp_path)
    stop_order = world.engine.positions[SYMBOL].stop.order
    assert stop_order is not None
    first = stop_order.client_id
    sent = sent_ids(world)
    cancels_fail = cancels_refused(world)
    _, moved, newer = await move_unjournaled(world)
    assert {o.client_id for o in await stops(world)} == {first, newer}
    world.store.db.conn.set_authorizer(None)
    cancels_fail[0] = False

    again = await restarted(world, sent)
    assert [(o.client_id, o.trigger_price) for o in await stops(again)] == [(newer, moved)]
    assert again.engine.positions[SYMBOL].stop.trigger_price == moved


async def test_a_restart_never_resends_an_id_the_exchange_knows_but_the_journal_does_not(
        tmp_path):
    """sl2 placed while nothing could be written, then cancelled by hand before the
    restart: nothing of ours is live, the journal names sl1. Binance refuses a duplicate id
    among open orders only, so sl2 sent again would be taken (one id, two orders): the
    stop that replaces it is sl3."""
    world = await world_with_a_long(tmp_path)
    sent = sent_ids(world)
    position, moved, newer = await move_unjournaled(world)
    for _ in range(2):
        await world.step()
    world.store.db.conn.set_authorizer(None)
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, newer, world.clock.now()))

    again = await restarted(world, sent)
    assert [o.client_id for o in await stops(again)] == [
        str(ClientId(SYMBOL, position.key, OrderRole.STOP_LOSS, 3))]


async def test_a_restart_whose_journal_awaits_the_first_stop_adopts_the_newer_one(tmp_path):
    """Found by the chaos run (CI of 7c3dfc1): the journal last saw the stop's placement
    (sl1) sent, not its answer; then nothing could be written while sl1 was cancelled by
    hand, replaced, and moved by the operator's /sl (acknowledged "done"). On the restart
    sl1 reads CANCELED: the placement the journal awaits ended, and the leg retried at the
    OLD level while the sweep cancelled the operator's live stop as a leftover. The live
    stop of ours newer than the awaited placement is the last decision: it is adopted."""
    world = await world_with_a_long(tmp_path)
    sent = sent_ids(world)
    position, moved, newer = await move_unjournaled(world)
    for _ in range(2):
        await world.step()
    assert [(o.client_id, o.trigger_price) for o in await stops(world)] == [(newer, moved)]
    world.store.db.conn.set_authorizer(None)    # killed; the disk is back for the restart
    journaled = world.store.position(SYMBOL, position.key)
    assert journaled is not None and journaled.stop.order is not None
    first = journaled.stop.order.client_id
    awaiting = evolve(journaled.stop, order=None, pending=first,
                      pending_trigger=journaled.stop.trigger_price)
    world.store.save_position(journaled.with_leg(awaiting))

    again = await restarted(world, sent)
    assert [(o.client_id, o.trigger_price) for o in await stops(again)] == [(newer, moved)]
    stop = again.engine.positions[SYMBOL].stop
    assert stop.trigger_price == moved, "the acknowledged move was undone"
    assert stop.order is not None and stop.order.client_id == newer and stop.pending is None
