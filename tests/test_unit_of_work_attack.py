"""Hostile checks of the unit of work (storage/unit_of_work.py): a refused commit at each
commit point of a busy tick in turn, with the paper exchange on its own file and on the
engine's (as `tradebot run --paper` has it: trader/app.py)."""

import sqlite3
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_world import (
    SYMBOL,
    OnDemandStrategy,
    World,
    long_signal,
    make_world,
    restart,
)
from tests.test_store_statements import committed
from trader.alerter import Alerter
from trader.control import Controller
from trader.domain import OrderType
from trader.engine import Engine
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.position import Position, PositionState
from trader.startup import boot

SQLITE_TRANSACTION = 22    # the authorizer's action codes
SQLITE_INSERT = 18
SQLITE_UPDATE = 23


async def shared_world(tmp_path: Path) -> World:
    """The engine world, with the paper exchange saving into the engine's database (as
    trader/engine_setup.py has it for a paper run)."""
    world = await make_world(tmp_path)
    paper = PaperExchange(world.store, world.clock,
                          SimConfig(balance=Decimal("10000"), seed=1, default_leverage=5))
    await paper.start([SYMBOL], world.settings.leverage)
    strategy = OnDemandStrategy()
    engine = Engine(world.settings, paper, world.store, world.clock, Alerter(world.store),
                    strategy=strategy)
    return World(world.db_path, world.settings, world.clock, world.store, paper, engine,
                 strategy, Controller(engine))


def deny_commit(action: int, arg1: str | None, *_: object) -> int:
    """An authorizer refusing COMMIT, as a disk gone bad would."""
    if action == SQLITE_TRANSACTION and arg1 == "COMMIT":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def refuse_commits(world: World, refuse: Callable[[str], bool]) -> list[str]:
    """Each commit of the unit with something to commit that `refuse(what)` picks is
    refused; returns the list of what was refused (filled as it happens)."""
    unit = world.store.unit
    commit = unit._commit
    refused: list[str] = []

    def counted(what: str) -> None:
        conn = unit.gate.conn
        if not conn.in_transaction or not refuse(what):
            return commit(what)
        refused.append(what)
        conn.set_authorizer(deny_commit)    # set now: SQLite prepares the COMMIT again
        try:
            return commit(what)
        finally:
            conn.set_authorizer(None)
    unit._commit = counted              # type: ignore[method-assign]
    return refused


def refuse_nth_commit(world: World, n: int) -> list[str]:
    """The unit's n-th commit (counting those with something to commit) is refused."""
    seen = [0]

    def nth(what: str) -> bool:
        seen[0] += 1
        return seen[0] == n
    return refuse_commits(world, nth)


def count_orders_placed(world: World) -> Counter[str]:
    """Every order the paper exchange is asked to place, by client id (a restart on the
    same exchange account keeps counting: give its world the same `place`)."""
    placed: Counter[str] = Counter()
    place = world.paper.place

    async def counted(request):  # type: ignore[no-untyped-def]
        placed[request.client_id] += 1
        return await place(request)
    world.paper.place = counted          # type: ignore[method-assign]
    return placed


async def step_refusing(world: World, authorizer: Callable[..., int], close: Decimal) -> None:
    """One step at `close` whose tick runs with `authorizer` on the database connection
    (the feed's own writes before the tick are not refused)."""
    tick = world.engine.tick

    async def refusing_tick() -> None:
        world.store.db.conn.set_authorizer(authorizer)
        try:
            await tick()
        finally:
            world.store.db.conn.set_authorizer(None)
    world.engine.tick = refusing_tick    # type: ignore[method-assign]
    try:
        await world.step(close)
    finally:
        world.engine.tick = tick         # type: ignore[method-assign]


async def entered(tmp_path: Path) -> tuple[World, Position, Counter[str]]:
    """A world holding one protected long, and the count of the orders placed from then on."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    return world, world.engine.positions[SYMBOL], count_orders_placed(world)


async def check_after(world: World, placed: Counter[str]) -> None:
    for _ in range(6):
        await world.step()
    assert all(count == 1 for count in placed.values()), placed
    exchange = await world.paper.position(SYMBOL)
    orders = await world.paper.open_orders(SYMBOL)
    if exchange.side is None:
        assert SYMBOL not in world.engine.positions
        assert orders == []
        return
    position = world.engine.positions[SYMBOL]
    assert position.state is PositionState.PROTECTED
    assert [o.type for o in orders].count(OrderType.STOP_MARKET) == 1
    assert committed(world.store, f"SELECT state FROM positions WHERE key = '{position.key}'") \
        == [("PROTECTED",)]
    assert len(world.alerts("SAVE_STATE_FAILURE")) == 1


ENTRY_TICK_COMMITS = [(False, n) for n in range(1, 5)] + [(True, n) for n in range(1, 9)]


@pytest.mark.parametrize(("shared", "n"), ENTRY_TICK_COMMITS)
async def test_a_refused_commit_at_each_point_of_an_entry_tick(tmp_path, shared, n) -> None:
    """Entry, stop-loss, take-profit: 4 commits of the engine's (one before each send and
    the tick's end), and 4 more with the paper exchange on the engine's file. Whichever
    is refused: nothing is sent twice, the position ends protected on the exchange and
    in the database, and SAVE_STATE_FAILURE is alerted once."""
    world = await (shared_world(tmp_path) if shared else make_world(tmp_path))
    await world.warm_up()
    placed = count_orders_placed(world)
    world.strategy.next = long_signal()
    refused = await refused_in_one_tick(world, n)
    assert refused, f"fewer than {n} commits"
    await check_after(world, placed)


async def refused_in_one_tick(world: World, n: int, close: Decimal | None = None
                              ) -> list[str]:
    """One step (at `close`, else the last close) whose tick's `n`th commit is refused
    (only the tick's commits, not the feed's); what `refuse_nth_commit` reports."""
    tick = world.engine.tick
    lists: list[list[str]] = []

    async def refusing_tick() -> None:
        lists.append(refuse_nth_commit(world, n))
        try:
            await tick()
        finally:
            del world.store.unit._commit
    world.engine.tick = refusing_tick    # type: ignore[method-assign]
    await world.step(close)
    world.engine.tick = tick             # type: ignore[method-assign]
    return lists[0]


@pytest.mark.parametrize("shared", [False, True])
async def test_a_close_rolled_back_at_the_ticks_end_is_written_again_by_the_next_tick(
        tmp_path, shared) -> None:
    """The stop-loss fills; the close (record, fills, journal, cooldown) is written into
    the unit, whose one commit, at the tick's end, is refused: the position has left the
    engine's memory, so no later step writes it. It used to stay PROTECTED in the database
    (its fills unrecorded) until a restart's reconciliation."""
    world = await (shared_world(tmp_path) if shared else make_world(tmp_path))
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    position = world.engine.positions[SYMBOL]
    refused = await refused_in_one_tick(world, 1, world.last_close * Decimal("0.97"))
    assert refused == ["end of the unit of work"]
    assert SYMBOL not in world.engine.positions
    for _ in range(2):
        await world.step()
    assert (await world.paper.position(SYMBOL)).side is None
    assert SYMBOL not in world.engine.positions
    assert committed(world.store, f"SELECT state FROM positions WHERE key = '{position.key}'") \
        == [("CLOSED",)]
    assert committed(world.store, "SELECT count(*) FROM fills") == \
        [(len(world.paper.sim.fills(SYMBOL)),)]
    assert len(world.alerts("SAVE_STATE_FAILURE")) == 1



async def test_a_close_whose_own_write_fails_is_written_again_by_the_next_tick(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    await world.step()
    position = world.engine.positions[SYMBOL]

    def no_position_writes(action: int, arg1: str | None, *_: object) -> int:
        if action in (SQLITE_INSERT, SQLITE_UPDATE) and arg1 == "positions":
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    await step_refusing(world, no_position_writes, world.last_close * Decimal("0.97"))
    assert SYMBOL not in world.engine.positions
    assert committed(world.store, f"SELECT state FROM positions WHERE key = '{position.key}'") \
        == [("PROTECTED",)]
    await world.step()
    assert committed(world.store, f"SELECT state FROM positions WHERE key = '{position.key}'") \
        == [("CLOSED",)]
    assert committed(world.store, "SELECT count(*) FROM events WHERE kind = 'position_closed'") \
        == [(1,)]
    await world.step()
    assert committed(world.store, "SELECT count(*) FROM events WHERE kind = 'position_closed'") \
        == [(1,)]                                   # written once, not every tick


SQLITE_DELETE = 9


def deny_every_write(action: int, arg1: str | None, *_: object) -> int:
    """A disk that refuses every write (read-only, full)."""
    if action in (SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE) or \
            (action == SQLITE_TRANSACTION and arg1 == "COMMIT"):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


async def test_a_partial_take_profit_is_not_sent_while_the_database_refuses_writes(
        tmp_path) -> None:
    """Found by the chaos run (seed 1301, 80 kills: tb-...-pt1 accepted twice). The partial
    take-profit was sent anyway, like protection; the restart on the same file knew
    nothing of it and sent the same client id again: a MARKET order fills at once, so
    Binance (duplicate ids refused among open orders only) took it and a second part of
    the position was closed. Now it waits until it can be journaled, as an entry does."""
    world, position, placed = await entered(tmp_path)
    await step_refusing(world, deny_every_write, position.entry_price * Decimal("1.006"))
    assert not [c for c in placed if c.endswith("-pt1")]
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    again = restart(world)       # killed now: the same file, the same exchange account
    again.paper.place = world.paper.place    # type: ignore[method-assign]  # counted
    await boot(again.engine)
    for _ in range(3):
        await again.step(position.entry_price * Decimal("1.006"))
    assert all(count == 1 for count in placed.values()), placed
    assert placed[f"tb-{SYMBOL}-{position.key}-pt1"] == 1
    held = await again.paper.position(SYMBOL)
    assert held.quantity == position.quantity - Decimal("0.113")     # one partial: half
    orders = await again.paper.open_orders(SYMBOL)
    assert [o.type for o in orders].count(OrderType.STOP_MARKET) == 1


async def test_a_pickup_on_a_wiped_disk_does_not_take_the_partial_again(tmp_path) -> None:
    """Found by the chaos run (seed 1301, 80 kills, after the fix above: tb-...-pt1
    accepted twice). The partial take-profit was taken; the disk is wiped; the restart
    picks its own position up again by the key of its live orders (trader/reconcile.py
    `recover_key`: the highest sequence of each role among LIVE orders) and, knowing
    neither that the partial was taken nor that pt1 was used, takes a second partial under
    the same client id: the exchange takes it (the first one is filled, not open). Now the
    pickup asks the exchange for pt1, pt2, ... by client id."""
    from tests.test_unit_of_work import restarted_on
    world, position, placed = await entered(tmp_path)
    partial_price = position.entry_price * Decimal("1.006")
    await world.step(partial_price)
    assert placed[f"tb-{SYMBOL}-{position.key}-pt1"] == 1
    half = (await world.paper.position(SYMBOL)).quantity
    again = restarted_on(world, tmp_path / "wiped.db")     # a wiped disk, the same account
    await boot(again.engine)
    for _ in range(3):
        await again.step(partial_price)
    assert all(count == 1 for count in placed.values()), placed
    assert (await again.paper.position(SYMBOL)).quantity == half
