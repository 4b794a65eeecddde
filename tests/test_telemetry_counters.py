"""The protection counters (trader/telemetry.py) move where those things happen, on the real
engine and the paper exchange, and show where telemetry is shown: the periodic
`telemetry symbol=...` log line and /status's view.

- sl_attached / tp_attached: placements the exchange acknowledged (first ones, moves);
- reattach_attempts / reattach_success: a vanished order replaced (and retries of it);
- partial_fills_count: an entry, stop-loss or take-profit of ours filled in part.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.log_capture import logged
from tests.positions import make, protected
from tests.test_engine import open_long as open_long_at
from trader.domain import OrderRole
from trader.events import EntryFilled, LegGone, LegPlaced, LegRejected, PlaceLeg, Policy, Tick
from trader.lifecycle import step
from trader.position import PositionState
from trader.telemetry import Counters, ProtectionTelemetry
from trader.views import status_view

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PROTECTION = ("sl_attached", "tp_attached", "reattach_attempts", "reattach_success",
              "partial_fills_count")


async def open_long(world):
    """A long with a 2 % stop and a 4 % target (room for the moves these tests make)."""
    return await open_long_at(world, "0.02", "0.04")


def counts(world) -> dict[str, int | str]:
    row = world.engine.counters.snapshot()[SYMBOL]
    return {name: row[name] for name in PROTECTION}


async def test_both_legs_acknowledged_count_one_stop_and_one_take_profit(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    assert counts(world) == {"sl_attached": 1, "tp_attached": 1, "reattach_attempts": 0,
                             "reattach_success": 0, "partial_fills_count": 0}


async def test_a_stop_cancelled_by_hand_counts_one_reattach_attempt_and_its_success(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    await world.step()
    assert counts(world) == {"sl_attached": 2, "tp_attached": 1, "reattach_attempts": 1,
                             "reattach_success": 1, "partial_fills_count": 0}


async def test_a_stop_missing_past_the_debounce_is_a_reattach_too(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.hide_order(position.stop.order.client_id)
    for _ in range(3):
        await world.step()
    assert world.engine.positions[SYMBOL].stop.order.client_id.endswith("sl2")
    assert counts(world)["reattach_attempts"] == counts(world)["reattach_success"] == 1


async def test_a_trailing_move_counts_as_an_attached_stop_not_a_reattach(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TRAILING_DISTANCE="0.5%")
    await open_long_at(world, sl_pct="0.01", tp_pct="0.05")
    await world.step(Decimal("101200"))
    moved = world.engine.positions[SYMBOL]
    stops_placed = moved.seq[OrderRole.STOP_LOSS.value]
    assert moved.trailing_active and stops_placed >= 2
    assert counts(world)["sl_attached"] == stops_placed
    assert counts(world)["reattach_attempts"] == counts(world)["reattach_success"] == 0


async def test_a_stop_filled_in_part_counts_one_partial_fill(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.fill_stop_in_part(position)
    await world.step()
    await world.step()
    assert counts(world)["partial_fills_count"] == 1


async def test_the_counters_show_in_the_telemetry_log_line_and_the_status_view(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    world.paper.publish(world.paper.sim.cancel_by_hand(SYMBOL, position.stop.order.client_id,
                                                       world.clock.now()))
    with logged("INFO") as lines:
        await world.step()
        await world.step()           # 5 minutes of engine time: the telemetry line is due
    [line] = [line for line in lines if line.startswith(f"telemetry symbol={SYMBOL}")][-1:]
    assert "sl_attached=2" in line and "tp_attached=1" in line
    assert "reattach_attempts=1" in line and "reattach_success=1" in line
    assert status_view(world.engine).counters[SYMBOL]["reattach_success"] == 1


# --- the counting rules, step by step (pure) -------------------------------------------------

def run(telemetry: ProtectionTelemetry, position, *events):
    """Step `position` through `events`, telling `telemetry` as the interpreter does."""
    actions = []
    for event in events:
        result = step(position, event, NOW, Policy())
        if not result.ignored:
            telemetry.stepped(position, event, result.position)
        position, actions = result.position, result.actions
    return position, actions


def test_a_refused_reattach_retried_counts_every_attempt_and_one_success() -> None:
    counters = Counters()
    telemetry = ProtectionTelemetry(counters)
    position = protected()
    stop_id = position.stop.order.client_id
    position, actions = run(telemetry, position, LegGone(OrderRole.STOP_LOSS, stop_id, True,
                                                         status="CANCELED"))
    [first] = [a for a in actions if isinstance(a, PlaceLeg)]
    position, _ = run(telemetry, position, LegRejected(OrderRole.STOP_LOSS, first.client_id,
                                                       "margin"))
    retry_at = position.stop.retry_at
    assert retry_at is not None
    tick = Tick(retry_at + timedelta(seconds=1), None, None)
    result = step(position, tick, retry_at + timedelta(seconds=1), Policy())
    telemetry.stepped(position, tick, result.position)
    [second] = [a for a in result.actions if isinstance(a, PlaceLeg)]
    position, _ = run(telemetry, result.position, LegPlaced(
        OrderRole.STOP_LOSS, second.client_id, second.trigger_price, second.quantity))
    assert position.state is PositionState.PROTECTED
    assert counters.get(position.symbol, "reattach_attempts") == 2
    assert counters.get(position.symbol, "reattach_success") == 1
    assert counters.get(position.symbol, "sl_attached") == 1


def test_an_entry_seen_filled_in_part_counts_one_partial_fill() -> None:
    counters = Counters()
    telemetry = ProtectionTelemetry(counters)
    entering = make(state=PositionState.ENTERING, live_legs=False, quantity="0.01")
    run(telemetry, entering, EntryFilled(Decimal("0.004"), Decimal("50000"), complete=False))
    assert counters.get(entering.symbol, "partial_fills_count") == 1
