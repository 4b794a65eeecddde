"""What a rolled-back unit of work (storage/unit_of_work.py) took off the disk is written
again by the next tick, not at the owner's next change or a restart: a guard trip, a
stream fill of a position still open, a funding payment. Each test refuses the commit at
the tick's end (a disk gone bad for a moment), lets the next tick run on a good disk,
reads what another process would read, then restarts on the same file."""

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_world import SYMBOL, World, long_signal, make_world, restart
from tests.log_capture import logged
from tests.test_store_statements import committed
from tests.test_unit_of_work_attack import (
    SQLITE_INSERT,
    entered,
    refuse_commits,
    refused_in_one_tick,
    step_refusing,
)
from trader import breaker_rules, operator_holds
from trader.exchange.base import ExchangeEvent, FundingApplied
from trader.guard_book import STATE_KEY
from trader.startup import boot

END = "end of the unit of work"


def refuse_tick_ends(world: World, times: int) -> list[str]:
    """The unit's commit at the end of each of the next `times` ticks is refused (the disk
    refuses it; the unit rolls back to its last commit point); returns what was refused."""
    left = [times]

    def tick_end(what: str) -> bool:
        if what != END or not left[0]:
            return False
        left[0] -= 1
        return True
    return refuse_commits(world, tick_end)


def with_events(world: World, events: list[ExchangeEvent]) -> None:
    """The next tick drains `events` along with what the paper exchange reports."""
    drain = world.paper.drain_events

    def drained() -> list[ExchangeEvent]:
        world.paper.drain_events = drain        # type: ignore[method-assign]
        return [*events, *drain()]
    world.paper.drain_events = drained          # type: ignore[method-assign]


def saved_breakers(world: World) -> str:
    rows = committed(world.store, f"SELECT value FROM kv WHERE key = '{STATE_KEY}'")
    return str(rows[0][0]) if rows else ""


async def tick_at(world: World, seconds: int) -> None:
    """A live tick `seconds` later, with no new candle (the loop ticks every few seconds)."""
    world.clock.set(world.clock.now() + timedelta(seconds=seconds))
    await world.engine.tick()


def trip_funding_breaker_in_the_next_tick(world: World) -> None:
    """The next tick trips the funding breaker (as housekeeping's funding check does on a
    jump of the rate within the hour)."""
    engine = world.engine
    real = engine._tick

    async def tripping() -> None:
        engine._tick = real                     # type: ignore[method-assign]
        engine.guards.apply(breaker_rules.check_funding, SYMBOL, Decimal("0.01"), Decimal("0"),
                            world.clock.now(), engine.guards.config)
        await real()
    engine._tick = tripping                     # type: ignore[method-assign]


BREAKER = f"funding:{SYMBOL}"


async def test_a_breaker_tripped_in_rolled_back_ticks_is_saved_again_by_the_next_tick(
        tmp_path) -> None:
    """The breaker trips in a tick whose commit is refused, and the next tick's too (the
    one that saved the guards with `save_failure`): the engine keeps it in memory, the
    database lost it. The first good tick writes the guards again, so a restart after it
    still holds entries back (it used to forget the breaker until the next guard change,
    and trade)."""
    world = await make_world(tmp_path)
    await world.warm_up()
    refused = refuse_tick_ends(world, 2)
    trip_funding_breaker_in_the_next_tick(world)
    await tick_at(world, 5)
    assert BREAKER in world.engine.guard_state.breakers
    await tick_at(world, 5)
    assert refused == [END, END]
    assert BREAKER not in saved_breakers(world)
    await tick_at(world, 5)                     # a good disk again
    assert BREAKER in saved_breakers(world)
    again = restart(world)
    await boot(again.engine)
    assert BREAKER in again.engine.guard_state.breakers


async def test_a_stream_fill_of_an_open_position_rolled_back_is_recorded_by_the_next_tick(
        tmp_path) -> None:
    """3/5 of the stop-loss fills; the stream reports it; the tick journals the fill, and
    first commit (before the stop-loss is sent again for the rest) is refused. The
    position stays open, so no close writes its fills: the tick records it again at its
    end (it used to be missing until the next reconciliation read the fills back)."""
    world, position, _ = await entered(tmp_path)
    world.fill_stop_in_part(position)
    [fill] = [f for f in world.paper.sim.fills(SYMBOL)
              if f.client_id == position.stop.order.client_id]
    refused = await refused_in_one_tick(world, 1)
    assert refused == [f"intent {position.stop.order.client_id[:-1]}2 sent"]
    assert SYMBOL in world.engine.positions
    sql = f"SELECT count(*) FROM fills WHERE trade_id = '{fill.trade_id}'"
    assert committed(world.store, sql) == [(1,)]        # written again at the tick's end
    again = restart(world)
    await boot(again.engine)
    await tick_at(again, 5)
    assert committed(again.store, sql) == [(1,)]


def funding_paid(world: World) -> FundingApplied:
    return FundingApplied(SYMBOL, Decimal("0.0001"), Decimal("-0.37"),
                          world.clock.now() - timedelta(seconds=1))


def journaled_funding(world: World) -> list[tuple[object, ...]]:
    return committed(world.store, "SELECT symbol, body FROM events WHERE kind = 'funding'")


async def funding_rolled_back(tmp_path: Path) -> World:
    """A world whose last tick journaled a funding payment the stream reported, and whose
    commit at that tick's end was refused."""
    world = await make_world(tmp_path)
    await world.warm_up()
    with_events(world, [funding_paid(world)])
    refused = refuse_tick_ends(world, 1)
    await tick_at(world, 5)
    assert refused == [END]
    return world


async def test_a_funding_payment_rolled_back_is_journaled_by_the_next_tick(tmp_path) -> None:
    """The stream reports a funding payment; the tick journals it and its commit is
    refused: the next tick journals it again (once), and a restart's PnL counts it."""
    world = await funding_rolled_back(tmp_path)
    assert journaled_funding(world) == []
    await tick_at(world, 5)
    await tick_at(world, 5)
    assert len(journaled_funding(world)) == 1
    again = restart(world)
    await boot(again.engine)
    assert [p.amount for p in again.store.funding_payments()] == [Decimal("-0.37")]


def deny_inserts_into(table: str) -> Callable[..., int]:
    def deny(action: int, arg1: str | None, *_: object) -> int:
        if action == SQLITE_INSERT and arg1 == table:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    return deny


async def test_a_repair_that_fails_again_is_tried_again_and_alerted_once(tmp_path) -> None:
    """The funding payment is rolled back; its repair, the next tick, fails too (the
    events table refuses inserts): it is counted as a failed write, kept, and written by
    the tick after (once). SAVE_STATE_FAILURE is alerted once for the whole episode."""
    world = await funding_rolled_back(tmp_path)
    failures = world.store.health.total_failures
    with logged("INFO") as logs:
        await step_refusing(world, deny_inserts_into("events"), world.last_close)
    assert world.store.health.total_failures == failures + 1
    assert any("written again" in line for line in logs), logs
    assert journaled_funding(world) == []
    await world.step()
    await world.step()
    assert len(journaled_funding(world)) == 1
    assert len(world.alerts("SAVE_STATE_FAILURE")) == 1
    again = restart(world)
    await boot(again.engine)
    assert [p.amount for p in again.store.funding_payments()] == [Decimal("-0.37")]


async def test_a_restart_does_not_inherit_the_block_of_a_failing_disk(tmp_path) -> None:
    """The guards saved with `save_failure` (entries blocked while writes fail) the tick
    after a refused commit; the process restarts before the recovery clears it. The new
    process's writes work, so it never reports a recovery: it used to keep entries blocked
    for good ("state could not be saved"). The flag belongs to the process that saw the
    failures: a boot starts without it (its own first failed write sets it again)."""
    world = await make_world(tmp_path)
    await world.warm_up()
    with_events(world, [funding_paid(world)])  # something to write
    assert refuse_tick_ends(world, 1) == []
    await tick_at(world, 5)
    await tick_at(world, 5)                     # saves the guards with save_failure
    assert '"save_failure": true' in saved_breakers(world)
    again = restart(world)
    await boot(again.engine)
    for _ in range(3):
        await again.step()
    assert again.engine.entry_refusal(SYMBOL) == ""


def saved_risk(world: World) -> str:
    rows = committed(world.store, "SELECT value FROM kv WHERE key = 'risk'")
    return str(rows[0][0]) if rows else ""


async def test_a_new_equity_peak_rolled_back_is_saved_again_by_the_next_tick(tmp_path) -> None:
    """The equity makes a new high (the risk fraction's peak, trader/risk_state.py) in a
    tick whose commit is refused: kept in memory only, it was saved again only when the
    fraction changed; a restart meanwhile measured the drawdown from the older, lower peak
    (a larger risk per trade than the rule allows)."""
    world, position, _ = await entered(tmp_path)
    await world.step(position.entry_price * Decimal("1.004"))
    before = saved_risk(world)
    refused = refuse_tick_ends(world, 1)
    await world.step(position.entry_price * Decimal("1.005"))
    peak = world.engine.risk.saved["peak"]
    assert refused == [END] and peak not in before, (refused, before, peak)
    assert saved_risk(world) == before
    await tick_at(world, 5)
    assert peak in saved_risk(world)


async def test_an_order_answer_rolled_back_is_journaled_by_the_next_tick(tmp_path) -> None:
    """Entry, stop-loss and take-profit are sent; the tick's last commit, after the
    take-profit's answer, is refused: its intent stayed SENT on the disk (the invariant
    monitor then reports it stuck, a restart probes it) although the exchange answered.
    The next tick journals the answer again (the intent ACKED, the order row)."""
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    refused = refuse_tick_ends(world, 1)
    await world.step()
    assert refused == [END]
    take_profit = world.engine.positions[SYMBOL].take_profit.order.client_id
    status = f"SELECT status FROM intents WHERE client_id = '{take_profit}'"
    assert committed(world.store, status) == [("SENT",)]
    await tick_at(world, 5)
    assert committed(world.store, status) == [("ACKED",)]
    assert committed(world.store, f"SELECT count(*) FROM orders WHERE client_id = "
                                  f"'{take_profit}'") == [(1,)]


async def test_a_pause_rolled_back_is_still_the_operators_after_a_restart(tmp_path) -> None:
    """/pause, and the command's unit of work is refused at its end: the guards and the
    operator's intent (trader/intent_keeper.py, saved for the boot rule) were rolled back.
    Without a Telegram pin the boot took the older record (running) and lifted the pause
    the guards had written again: the agent traded after /pause. The next tick writes the
    intent again too."""
    from trader.clock import SystemClock
    from trader.commands import CommandKind
    from trader.intent_keeper import IntentKeeper

    def keeper_of(world: World) -> IntentKeeper:
        return IntentKeeper(world.engine.guards, world.store, world.engine.alerter,
                            SystemClock(), None)
    world = await make_world(tmp_path)
    await world.warm_up()
    world.engine.load_state()
    await keeper_of(world).recover(0)
    refused = refuse_tick_ends(world, 1)
    await world.command(CommandKind.PAUSE)
    assert refused == [END] and world.engine.guard_state.paused
    await tick_at(world, 5)
    again = restart(world)
    await boot(again.engine)
    await keeper_of(again).recover(0)
    assert again.engine.guard_state.paused


async def test_funding_read_back_in_a_rolled_back_wake_is_journaled_by_the_next_tick(
        tmp_path) -> None:
    """/wake reconciles inside its command's unit of work, reading back the funding the
    stream missed (trader/funding_backfill.py); the unit is refused at its end. With the
    stream up the next read-back is due only at a reconnect: the payment stayed missing
    from PnL until then, or a restart. The next tick journals it again (once)."""
    from trader.commands import CommandKind
    from trader.exchange.base import FundingIncome
    world, _, _ = await entered(tmp_path)
    income = FundingIncome("9001", SYMBOL, Decimal("-0.21"), "USDT",
                           world.clock.now() - timedelta(seconds=30))

    async def history(since, until):  # type: ignore[no-untyped-def]
        return [income] if since <= income.time <= until else []
    world.paper.funding_income = history        # type: ignore[method-assign]
    world.engine.booted = True                  # reconcile reads back once booted
    world.engine.funding_backfill.wanted = True
    world.engine.guard_state = operator_holds.sleep(world.engine.guard_state)   # a /wake wakes it
    refused = refuse_tick_ends(world, 1)
    await world.command(CommandKind.WAKE)
    assert refused == [END]
    assert not world.engine.funding_backfill.wanted        # read back, then rolled back
    assert journaled_funding(world) == []
    await tick_at(world, 5)
    await tick_at(world, 5)
    assert len(journaled_funding(world)) == 1


def test_one_repair_that_raises_does_not_lose_the_others() -> None:
    """A rewrite that raises something unexpected (a defect in its owner) goes to the
    caller's boundary and is kept for the next tick; the others are still written."""
    from storage.unit_of_work import Rewrites
    written: list[str] = []
    reported: list[tuple[str, Exception]] = []

    def broken() -> None:
        raise RuntimeError("a defect in the owner's rewrite")

    def boundary(what: str, exc: Exception) -> bool:
        reported.append((what, exc))
        return True                     # live: logged, counted, alerted; go on

    rewrites = Rewrites(unit=None)  # type: ignore[arg-type]   # write_again needs no unit
    rewrites.failed("broken", broken)
    rewrites.failed("guards", lambda: written.append("guards"))
    rewrites.write_again(boundary)
    assert written == ["guards"]
    assert list(rewrites.lost) == ["broken"]
    assert [(what, type(exc)) for what, exc in reported] == [("write again broken",
                                                              RuntimeError)]


def test_a_repair_that_raises_in_a_backtest_ends_it() -> None:
    """Where the boundary says propagate (a backtest: fail fast), the error goes on up."""
    from storage.unit_of_work import Rewrites

    def broken() -> None:
        raise RuntimeError("a defect in the owner's rewrite")

    rewrites = Rewrites(unit=None)  # type: ignore[arg-type]
    rewrites.failed("broken", broken)
    with pytest.raises(RuntimeError):
        rewrites.write_again(lambda what, exc: False)
