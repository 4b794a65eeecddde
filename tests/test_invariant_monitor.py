"""The live invariant monitor in the real engine on the paper exchange: what lasts two checks
is alerted once (typed, with its evidence) and cleared when it ends; what the engine passes
through on purpose (a position opened this tick, legs being placed, stops moved new-first,
closes) is never alerted; /health lists what is broken now; 0 switches it off."""

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bot.health_reply import health_text
from tests.engine_world import SYMBOL, World, long_signal, make_world
from trader.alert_routing import AlertRouting
from trader.alerts import Alert, AlertName
from trader.backtest import run_backtest
from trader.clock import ManualClock, SystemClock
from trader.config import load_settings
from trader.domain import Intent, IntentStatus, OrderRequest, OrderRole, OrderType, Side
from trader.health import HealthMonitor
from trader.invariant_checks import InvariantKind
from trader.invariant_monitor import InvariantMonitor
from trader.market.replay import load_bundled
from trader.presence import AgentPresence
from trader.trade_store import TradeStore

EVERY = 3           # ticks between checks (the smallest allowed)
HAND_STOP = "web_hand_stop_1"


async def world_checking(tmp_path: Path, **env: object) -> World:
    world = await make_world(tmp_path, TRADEBOT_INVARIANT_CHECK_TICKS=EVERY, **env)
    await world.warm_up()
    return world


async def open_long(world: World) -> None:
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()


async def steps(world: World, count: int) -> None:
    for _ in range(count):
        await world.step()


async def ticks(world: World, count: int, every: timedelta = timedelta(0)) -> None:
    """Engine ticks between candles (the live loop ticks every 2 s on 1-5 min candles): the
    time-in-trade exit stays far off."""
    for _ in range(count):
        world.clock.advance(every)
        await world.engine.tick()


def place_by_hand(world: World, request: OrderRequest) -> None:
    """What the operator does in the Binance app (the paper exchange pushes its events)."""
    _, events = world.paper.sim.place(request, world.clock.now())
    world.paper.publish(events)


def hand_stop(quantity: Decimal) -> OrderRequest:
    return OrderRequest(SYMBOL, Side.SELL, OrderType.STOP_MARKET, quantity, HAND_STOP,
                        OrderRole.STOP_LOSS, trigger_price=Decimal("90000"), reduce_only=True)


def invariant_alerts(world: World) -> list[tuple[str, str]]:
    return [(a.name, a.severity) for a in world.store.recent_alerts(500)
            if a.name.startswith("INVARIANT_")]


def monitor_of(world: World) -> InvariantMonitor:
    return world.engine.housekeeping.invariants


# --- transients are not alerted -----------------------------------------------------------
async def test_a_backtest_with_many_trades_raises_no_invariant_alert(tmp_path, monkeypatch):
    """47 trades on the bundled data: entries, legs, stop moves, closes. The checks do see
    the one-tick transients (a position opened this tick is not in the tracker's view yet),
    and never alert them."""
    seen: Counter[str] = Counter()
    check = InvariantMonitor.check

    async def counting(self: InvariantMonitor):  # type: ignore[no-untyped-def]
        found = await check(self)
        seen["checks"] += 1
        seen.update(v.kind.value for v in found)
        return found
    monkeypatch.setattr(InvariantMonitor, "check", counting)
    settings = load_settings(_env_file=None, TRADEBOT_INVARIANT_CHECK_TICKS=EVERY)
    report = await run_backtest(settings, load_bundled(), tmp_path / "out", progress=False)
    assert len(report.trades) >= 20
    assert seen["checks"] >= 800
    assert seen["POSITION_MISMATCH"] > 0, "the transients the persistence rule is for"
    store = TradeStore.open(tmp_path / "out" / "backtest.db")
    try:
        assert [a.name for a in store.recent_alerts(5000) if a.name.startswith("INVARIANT_")] \
            == []
    finally:
        store.close()


async def test_a_protected_position_and_a_stop_moved_new_first_raise_nothing(tmp_path):
    world = await world_checking(tmp_path)
    await open_long(world)
    position = world.engine.positions[SYMBOL]
    moved = position.with_leg(replace(position.stop, trigger_price=position.stop.trigger_price
                                      + 100))
    world.engine.interpreter.positions[SYMBOL] = moved     # a stop move: new first, then old
    await ticks(world, 4 * EVERY)
    assert world.engine.positions[SYMBOL].stop.order.client_id.endswith("sl2")
    assert monitor_of(world).checks >= 4 and invariant_alerts(world) == []


# --- what lasts is alerted once, and cleared --------------------------------------------------
async def test_a_second_stop_is_alerted_once_after_two_checks_and_cleared_once(tmp_path):
    world = await world_checking(tmp_path)
    await open_long(world)
    monitor = monitor_of(world)
    place_by_hand(world, hand_stop(world.engine.positions[SYMBOL].quantity))
    checks = monitor.checks
    while monitor.checks < checks + 1:
        await ticks(world, 1)
    assert invariant_alerts(world) == [], "one check is not enough"
    while monitor.checks < checks + 2:
        await ticks(world, 1)
    assert invariant_alerts(world) == [("INVARIANT_EXTRA_STOP", "WARN")]
    assert HAND_STOP in world.alerts("INVARIANT_EXTRA_STOP")[0]
    await ticks(world, 3 * EVERY, timedelta(minutes=1))
    assert invariant_alerts(world) == [("INVARIANT_EXTRA_STOP", "WARN")]

    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, HAND_STOP, world.clock.now()))
    await ticks(world, 3 * EVERY)
    assert invariant_alerts(world) == [("INVARIANT_EXTRA_STOP", "WARN"),
                                       ("INVARIANT_CLEARED", "INFO")]


async def test_a_violation_back_within_the_throttle_is_alerted_when_it_passes_never_lost(
        tmp_path):
    """The alerter drops a repeat of one key within 5 min: the monitor tries again at each
    check until it goes out (30 s ticks: a check every 1.5 min)."""
    world = await world_checking(tmp_path)
    await open_long(world)
    quantity = world.engine.positions[SYMBOL].quantity
    half_minute = timedelta(seconds=30)
    place_by_hand(world, hand_stop(quantity))
    await ticks(world, 2 * EVERY, half_minute)
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, HAND_STOP, world.clock.now()))
    await ticks(world, EVERY, half_minute)
    place_by_hand(world, replace_id(hand_stop(quantity), "web_hand_stop_2"))
    await ticks(world, 2 * EVERY, half_minute)
    assert [n for n, _ in invariant_alerts(world)] == ["INVARIANT_EXTRA_STOP",
                                                        "INVARIANT_CLEARED"], "throttled"
    assert [v.kind for v in monitor_of(world).violations] == [InvariantKind.EXTRA_STOP]
    await ticks(world, 2 * EVERY, half_minute)
    assert [n for n, _ in invariant_alerts(world)] == ["INVARIANT_EXTRA_STOP",
                                                        "INVARIANT_CLEARED",
                                                        "INVARIANT_EXTRA_STOP"]
    assert "web_hand_stop_2" in world.alerts("INVARIANT_EXTRA_STOP")[-1]


async def test_a_kind_turned_off_is_recorded_once_not_at_every_check(tmp_path):
    world = await world_checking(tmp_path, TRADEBOT_ALERTS_OFF="INVARIANT_EXTRA_STOP")
    world.engine.alerter.routing = AlertRouting.from_settings(world.settings)   # as the app
    await open_long(world)
    place_by_hand(world, hand_stop(world.engine.positions[SYMBOL].quantity))
    await ticks(world, 6 * EVERY)
    statuses = [a.status for a in world.store.recent_alerts(500)
                if a.name == "INVARIANT_EXTRA_STOP"]
    assert statuses == ["off"]


def replace_id(request: OrderRequest, client_id: str) -> OrderRequest:
    return replace(request, client_id=client_id)


async def test_an_untracked_naked_position_is_a_critical_mismatch_and_no_stop(tmp_path):
    """TRADEBOT_ADOPT_POSITIONS=false leaves a hand-opened position alone: nobody protects it."""
    world = await world_checking(tmp_path, TRADEBOT_ADOPT_POSITIONS="false")
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.01"),
                                                     world.clock.now()))
    await steps(world, 2 * EVERY)
    assert sorted(invariant_alerts(world)) == [("INVARIANT_NO_STOP", "CRITICAL"),
                                               ("INVARIANT_POSITION_MISMATCH", "CRITICAL"),
                                               ("INVARIANT_TAKE_PROFIT", "WARN")]
    [mismatch] = world.alerts("INVARIANT_POSITION_MISMATCH")
    assert "database flat, exchange LONG 0.01" in mismatch
    assert "LONG 0.01 open without a stop-loss" in world.alerts("INVARIANT_NO_STOP")[0]
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    await steps(world, EVERY)
    assert Counter(n for n, _ in invariant_alerts(world))["INVARIANT_CLEARED"] == 3
    assert monitor_of(world).violations == []


async def test_an_intent_sent_and_never_resolved_is_stuck(tmp_path):
    world = await world_checking(tmp_path)
    sent = world.clock.now() - timedelta(minutes=10)
    intent = Intent("tb-BTCUSDT-lost1-en1", SYMBOL, OrderRole.ENTRY, Side.BUY,
                    OrderType.MARKET, Decimal("0.01"), "lost1", sent, IntentStatus.SENT,
                    sent_at=sent)
    world.store.save_intent(intent)
    await steps(world, 2 * EVERY)
    assert invariant_alerts(world) == [("INVARIANT_STUCK_INTENT", "WARN")]
    assert "tb-BTCUSDT-lost1-en1 (MARKET BUY 0.01" in world.alerts("INVARIANT_STUCK_INTENT")[0]
    world.store.save_intent(intent.with_status(IntentStatus.EXPIRED, "not found"))
    await steps(world, EVERY)
    assert invariant_alerts(world)[-1] == ("INVARIANT_CLEARED", "INFO")


class SilentSink:
    """A sink that never delivers (Telegram unreachable for good)."""

    def wake(self) -> None:
        return None


async def test_alerts_that_wait_five_minutes_of_wall_time_are_a_backlog(tmp_path):
    world = await world_checking(tmp_path)
    wall = ManualClock(world.clock.now())
    monitor_of(world).wall_clock = wall
    world.engine.alerter.sink = SilentSink()   # type: ignore[assignment]
    world.engine.alerter.publish(Alert(AlertName.FILL, "BTCUSDT LONG filled", SYMBOL),
                                 world.clock.now())
    await steps(world, 2 * EVERY)              # the alert is seen waiting ...
    assert invariant_alerts(world) == []
    wall.advance(timedelta(minutes=5, seconds=1))     # ... for 5 min of wall time
    await steps(world, 2 * EVERY)
    assert invariant_alerts(world) == [("INVARIANT_ALERT_BACKLOG", "WARN")]
    for alert in world.store.pending_alerts(500):     # delivered at last
        world.store.mark_alert(alert.id, "sent", world.clock.now())
    await steps(world, EVERY)
    assert invariant_alerts(world)[-1] == ("INVARIANT_CLEARED", "INFO")


# --- /health, off -------------------------------------------------------------------------------
async def test_health_lists_the_current_violations(tmp_path):
    world = await world_checking(tmp_path)
    await open_long(world)
    presence = AgentPresence(world.store, lambda: world.engine.ticks, world.engine.wakeup,
                             SystemClock(), replay=False)
    health = HealthMonitor(world.engine, presence, SystemClock())
    assert health.view().invariants == []
    place_by_hand(world, hand_stop(world.engine.positions[SYMBOL].quantity))
    await steps(world, 2 * EVERY)
    view = health.view()
    [line] = view.invariants
    assert line.startswith("EXTRA_STOP BTCUSDT: LONG") and HAND_STOP in line
    assert view.as_json()["invariants"] == [line]
    assert "🚨 invariant EXTRA_STOP BTCUSDT" in health_text(view)


async def test_zero_switches_the_monitor_off(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_INVARIANT_CHECK_TICKS="0",
                             TRADEBOT_ADOPT_POSITIONS="false")
    await world.warm_up(3)
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.01"),
                                                     world.clock.now()))
    await world.warm_up(12)
    assert monitor_of(world).checks == 0 and invariant_alerts(world) == []
