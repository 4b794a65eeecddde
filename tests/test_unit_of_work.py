"""The live tick as one unit of work (storage/unit_of_work.py): its writes share one
transaction, committed before every order request leaves, whenever the tick waits, and at
its end; a refused commit rolls back to the last commit point, alerts, and never stops
protection; other tasks only ever read committed rows."""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_world import SYMBOL, World, long_signal, make_world, settings_for
from tests.log_capture import logged
from tests.test_engine import open_long
from tests.test_store_statements import committed
from trader.alerter import Alerter
from trader.commands import CommandKind
from trader.control import Controller
from trader.domain import Order, OrderRequest, OrderType
from trader.engine import Engine
from trader.position import PositionState
from trader.startup import boot
from trader.trade_store import TradeStore

SQLITE_TRANSACTION = 22     # the authorizer's action code for BEGIN / COMMIT / ROLLBACK


def refuse_commits(world: World, times: int = 1) -> Callable[[], list[int]]:
    """Returns `refuse`: calling it makes the next `times` COMMITs fail (an error, like a
    disk gone bad) and returns the list that counts the refusals."""
    refusals: list[int] = []
    left = [0]

    def authorize(action: int, arg1: str | None, *_: object) -> int:
        if action == SQLITE_TRANSACTION and arg1 == "COMMIT" and left[0] > 0:
            left[0] -= 1
            refusals.append(1)
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def refuse() -> list[int]:
        left[0] = times
        # set again: SQLite re-prepares its statements, so a cached COMMIT is authorized anew
        world.store.db.conn.set_authorizer(authorize)
        return refusals
    return refuse


def watch_places(world: World, before: Callable[[OrderRequest], None]) -> list[str]:
    """Calls `before(request)` inside the exchange's place, just before the paper exchange
    takes the order; returns the client ids placed."""
    place = world.paper.place
    placed: list[str] = []

    async def watched(request: OrderRequest) -> Order:
        before(request)
        order = await place(request)
        placed.append(request.client_id)
        return order
    world.paper.place = watched          # type: ignore[method-assign]
    return placed


def intent_status(world: World, client_id: str) -> list[tuple[object, ...]]:
    return committed(world.store, f"SELECT status FROM intents WHERE client_id = '{client_id}'")


# --- write-ahead ----------------------------------------------------------------------
async def test_every_order_of_an_entry_tick_leaves_after_its_sent_intent_is_committed(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    at_the_send: dict[str, list[tuple[object, ...]]] = {}
    placed = watch_places(world, lambda request: at_the_send.update(
        {request.client_id: intent_status(world, request.client_id)}))
    commits: list[str] = []
    world.strategy.next = long_signal()
    world.store.db.conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    await world.step()
    world.store.db.conn.set_trace_callback(None)

    assert [c.rsplit("-", 1)[1] for c in placed] == ["en1", "sl1", "tp1"]
    assert at_the_send == {c: [("SENT",)] for c in placed}      # durable before it left
    # one commit before each send and one at the end of the tick (was one per state change)
    assert len(commits) == len(placed) + 1
    position = world.engine.positions[SYMBOL]
    assert committed(world.store, "SELECT state FROM positions WHERE key = "
                     f"'{position.key}'") == [("PROTECTED",)]
    assert intent_status(world, placed[-1]) == [("ACKED",)]     # the tick's end committed


async def test_an_entry_whose_pre_send_commit_is_refused_is_not_sent_and_the_next_tick_trades(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    refusals = refuse_commits(world)()
    placed = watch_places(world, lambda request: None)
    world.strategy.next = long_signal()
    await world.step()                       # the entry's commit point is the tick's first
    assert refusals == [1] and placed == []  # nothing reached the exchange
    assert SYMBOL not in world.engine.positions
    assert (await world.paper.position(SYMBOL)).side is None
    assert committed(world.store, "SELECT count(*) FROM intents") == [(0,)]   # rolled back
    await world.step()
    assert world.alerts("SAVE_STATE_FAILURE")
    for _ in range(3):
        await world.step()
    assert world.alerts("SAVE_STATE_RECOVERED")
    world.strategy.next = long_signal()
    await world.step()
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert len(placed) == 3


async def test_a_stop_loss_whose_pre_send_commit_is_refused_is_placed_anyway(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    refuse = refuse_commits(world)
    refused: list[list[int]] = []

    def refuse_after_the_entry(request: OrderRequest) -> None:
        if request.client_id.endswith("-en1"):
            refused.append(refuse())             # the next commit: the stop-loss's
    placed = watch_places(world, refuse_after_the_entry)
    world.strategy.next = long_signal()
    await world.step()

    assert [len(r) for r in refused] == [1]
    assert [c.rsplit("-", 1)[1] for c in placed] == ["en1", "sl1", "tp1"]
    stops = [o for o in await world.paper.open_orders(SYMBOL)
             if o.type is OrderType.STOP_MARKET]
    assert len(stops) == 1
    position = world.engine.positions[SYMBOL]
    assert position.state is PositionState.PROTECTED
    # the legs' later steps saved the whole record again
    assert committed(world.store, "SELECT state FROM positions WHERE key = "
                     f"'{position.key}'") == [("PROTECTED",)]
    await world.step()
    assert world.alerts("SAVE_STATE_FAILURE")
    assert world.store.health.total_failures == 1


# --- a crash between a send and the tick's end ----------------------------------------------
def crash_image(world: World, copy: Path) -> None:
    """What a process killed now leaves on disk: the committed rows only."""
    with sqlite3.connect(f"file:{world.db_path}?mode=ro", uri=True) as source, \
            sqlite3.connect(copy) as target:
        source.backup(target)


def restarted_on(world: World, db_path: Path) -> World:
    settings = settings_for(db_path)
    store = TradeStore.open(db_path)
    engine = Engine(settings, world.paper, store, world.clock, Alerter(store, world.clock),
                    strategy=world.strategy)
    return World(db_path, settings, world.clock, store, world.paper, engine, world.strategy,
                 Controller(engine), world.last_close, world.candles)


async def test_a_crash_after_the_last_send_and_before_the_ticks_end_sends_nothing_twice(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    image = tmp_path / "crashed.db"
    place = world.paper.place
    accepted: list[str] = []

    async def place_then_crash_after_the_take_profit(request: OrderRequest) -> Order:
        order = await place(request)
        accepted.append(request.client_id)
        if request.client_id.endswith("-tp1"):
            crash_image(world, image)        # killed as the take-profit's answer came back
        return order
    world.paper.place = place_then_crash_after_the_take_profit   # type: ignore[method-assign]
    world.strategy.next = long_signal()
    await world.step()
    assert image.exists()
    tp = accepted[-1]
    key = world.engine.positions[SYMBOL].key

    restarted = restarted_on(world, image)
    assert restarted.store.intent(tp).status.value == "SENT"   # its answer was not committed
    assert committed(restarted.store, f"SELECT state FROM positions WHERE key = '{key}'") \
        == [("ATTACHING",)]                                     # as the last commit point left it
    world.paper.place = place                # type: ignore[method-assign]
    sent = restarted.sent
    await boot(restarted.engine)
    await restarted.step()
    assert restarted.sent == sent                               # nothing sent again
    assert restarted.store.intent(tp).status.value == "ACKED"  # probed and resolved
    assert restarted.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert committed(restarted.store, f"SELECT state FROM positions WHERE key = '{key}'") \
        == [("PROTECTED",)]
    orders = await world.paper.open_orders(SYMBOL)
    assert sorted(o.client_id for o in orders) == sorted(accepted[1:])


# --- other tasks see committed rows only ----------------------------------------------------
async def test_the_alert_delivery_loop_never_reads_an_uncommitted_alert(tmp_path) -> None:
    """The tick queues an alert, then waits; the delivery loop, on the same connection,
    runs meanwhile: the alert it reads is committed (the unit committed before waiting,
    not the safety net)."""
    world = await make_world(tmp_path)
    alerter = world.engine.alerter
    delivered: list[tuple[int, bool]] = []

    async def delivery_loop() -> None:
        for alert in alerter.pending():
            assert alert.outbox_id is not None
            seen = committed(world.store,
                             f"SELECT count(*) FROM alerts WHERE id = {alert.outbox_id}")
            delivered.append((alert.outbox_id, seen == [(1,)]))

    async def tick() -> None:
        alerter.publish(_an_alert(), world.clock.now())
        assert world.store.db.conn.in_transaction           # queued inside the unit
        await asyncio.create_task(delivery_loop())          # the engine task waits here

    with logged("WARNING", "a read from another task") as warnings:
        await world.store.unit_of_work(tick())
    assert len(delivered) == 1 and all(ok for _, ok in delivered)
    assert warnings == []


def _an_alert():  # type: ignore[no-untyped-def]
    from trader.alerts import Alert, AlertName
    return Alert(AlertName.STARTUP, "a test alert", dedup_key="unit-of-work")


async def test_a_read_from_another_task_while_the_unit_is_open_commits_it_first(
        tmp_path) -> None:
    """The safety net: a tick that waits inside a grouped write (the one place the unit
    cannot commit) leaves its transaction open; a reader from another task commits it
    first, is warned about once, and reads only what a second connection also sees."""
    world = await make_world(tmp_path)
    store = world.store
    seen: list[object] = []

    async def reader() -> None:
        seen.append(store.get("k"))
        seen.append(committed(store, "SELECT value FROM kv WHERE key = 'k'"))

    async def tick() -> None:
        store.put("before", 1, world.clock.now())
        with store.transaction("held open across a wait"):
            store.put("k", 2, world.clock.now())
            await asyncio.create_task(reader())

    with logged("WARNING", "a read from another task") as warnings:
        await store.unit_of_work(tick())
    assert seen == [2, [("2",)]]
    assert len(warnings) == 1 and "engine_task" in warnings[0]
    assert committed(store, "SELECT key FROM kv WHERE key IN ('before', 'k') ORDER BY key") \
        == [("before",), ("k",)]


async def test_a_write_from_another_thread_while_the_unit_is_open_commits_it_first(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    store = world.store

    def writer() -> None:
        store.put("other", 1, world.clock.now())

    async def tick() -> None:
        store.put("mine", 1, world.clock.now())
        thread = threading.Thread(target=writer)     # not a task: no asyncio loop there
        thread.start()
        thread.join()

    with logged("WARNING", "a write from another task") as warnings:
        await store.unit_of_work(tick())
    assert len(warnings) == 1 and "another thread" in warnings[0]
    assert committed(store, "SELECT key FROM kv WHERE key IN ('mine', 'other') ORDER BY key") \
        == [("mine",), ("other",)]


# --- the failure rule -----------------------------------------------------------------------
async def test_a_refused_commit_at_the_ticks_end_keeps_its_alerts_in_memory(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up()
    refuse = refuse_commits(world)
    alerter = world.engine.alerter

    async def tick() -> None:
        alerter.publish(_an_alert(), world.clock.now())
        refuse()

    await world.store.unit_of_work(tick())
    assert committed(world.store, "SELECT count(*) FROM alerts WHERE dedup_key = "
                     "'unit-of-work'") == [(0,)]
    assert [a.text for a in alerter.take_unsaved()] == ["a test alert"]
    assert world.store.health.total_failures == 1


async def test_the_unit_is_a_no_op_inside_a_replay_batch(tmp_path) -> None:
    world = await make_world(tmp_path)
    store = world.store
    statements: list[str] = []

    async def tick() -> None:
        store.put("k", 1, world.clock.now())
        store.commit_point("nothing to commit here")

    store.db.conn.set_trace_callback(statements.append)
    with store.batch("replay candle"):
        await store.unit_of_work(tick())
    store.db.conn.set_trace_callback(None)
    assert "COMMIT" not in statements
    assert not store.unit.open


async def test_the_engine_world_never_trips_the_safety_net(tmp_path) -> None:
    world = await make_world(tmp_path)
    with logged("WARNING", "a ") as warnings:
        position = await open_long(world)
        world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                           world.clock.now()))
        for _ in range(3):
            await world.step(world.last_close * Decimal("1.001"))
    assert not [w for w in warnings if "from another task" in w]
    assert not world.store.unit.warned


async def test_a_tick_that_raises_or_is_cancelled_commits_what_it_wrote_and_closes_the_unit(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    store = world.store

    async def failing() -> None:
        store.put("written before the error", 1, world.clock.now())
        raise ValueError("a bug in the tick")

    with pytest.raises(ValueError, match="a bug in the tick"):
        await store.unit_of_work(failing())
    assert committed(store, "SELECT count(*) FROM kv WHERE key = 'written before the error'") \
        == [(1,)]
    assert not store.unit.open and not store.db.conn.in_transaction

    waiting = asyncio.Event()

    async def waits_forever() -> None:
        store.put("written before the wait", 1, world.clock.now())
        waiting.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(store.unit_of_work(waits_forever()))
    await asyncio.wait_for(waiting.wait(), 5)
    assert committed(store, "SELECT count(*) FROM kv WHERE key = 'written before the wait'") \
        == [(1,)]                                    # committed before it waited
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.cancelled() and not store.unit.open


async def test_a_close_command_runs_as_one_unit_and_its_order_leaves_after_its_intent_is_committed(
        tmp_path) -> None:
    world = await make_world(tmp_path)
    await open_long(world)
    at_the_send: dict[str, list[tuple[object, ...]]] = {}
    placed = watch_places(world, lambda request: at_the_send.update(
        {request.client_id: intent_status(world, request.client_id)}))
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    assert result.ok, result.lines
    assert placed and at_the_send == {c: [("SENT",)] for c in placed}
    assert SYMBOL not in world.engine.positions
    assert committed(world.store, "SELECT state FROM positions") == [("CLOSED",)]
    assert not world.store.unit.open and not world.store.unit.warned
