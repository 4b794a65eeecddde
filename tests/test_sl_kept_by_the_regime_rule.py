"""A stop the operator set with /sl stays where it was set when the volatility regime
changes: the regime rule scales the stop the agent planned, not the operator's choice (as it
already leaves a take-profit moved by hand). Before, a looser /sl was tightened back to the
new regime's level at the next regime change (NORMAL -> HIGH pulled a stop set 4 % below the
entry to 2.6 %: a widening regime narrowed the room asked for), and once it was the rule's
again the next change loosened it. The trailing stop and the move to breakeven still
tighten it (they lock in profit; README: /sl)."""

from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.test_rules_regime import MARK, RULES, calm_long, long_position, violent_candle
from trader.commands import CommandKind
from trader.domain import OrderRole
from trader.events import LegPlaced, Policy, StopMoveRequested
from trader.lifecycle import step
from trader.position import Position
from trader.regime_adjust import follow
from trader.strategy.regime import Regime

D = Decimal


def moved_by_the_operator(position: Position, level: Decimal) -> Position:
    """`position` after a /sl to `level` whose new stop is on the exchange."""
    moved = step(position, StopMoveRequested(level), position.opened_at, Policy()).position
    assert moved.stop.pending is not None
    placed = LegPlaced(OrderRole.STOP_LOSS, moved.stop.pending, level, moved.quantity)
    landed = step(moved, placed, position.opened_at, Policy()).position
    assert landed.stop.order is not None and landed.stop.order.trigger_price == level
    return landed


def test_a_stop_set_by_the_operator_is_left_where_it_is_by_any_regime() -> None:
    """Planned 49,000 in NORMAL; the operator sets 47,000 (looser than every regime's level)
    and later 49,500 (tighter than every one): no regime moves either."""
    position = long_position()
    for level in (D("47000"), D("49500")):
        position = moved_by_the_operator(position, level)
        for regime in (Regime.HIGH, Regime.EXTREME, Regime.LOW, Regime.NORMAL):
            position = follow(position, regime, MARK, RULES)
            assert position.stop.trigger_price == level, (level, regime)
        assert position.take_profit.trigger_price == D("52000")   # back to the plan


async def test_a_looser_sl_survives_the_regime_turning_violent(tmp_path):
    """Real engine on the paper exchange: /sl 4 % below the entry, then violent candles turn
    the regime HIGH, then EXTREME; the stop on the exchange stays at the level set, the
    take-profit follows the regime."""
    world = await calm_long(tmp_path)
    planned = world.engine.positions[SYMBOL]
    entry = planned.entry_price
    level = world.paper.rules(SYMBOL).round_price(entry * D("0.96"), up=False)
    assert (await world.command(CommandKind.SL, symbol=SYMBOL, price=level)).ok
    seen: set[str] = set()
    for _ in range(6):
        await violent_candle(world, entry)
        seen.add(world.engine.counters.get(SYMBOL, "regime_state"))
        assert world.engine.positions[SYMBOL].stop.trigger_price == level
    assert {"HIGH", "EXTREME"} <= seen
    held = world.engine.positions[SYMBOL]
    assert held.take_profit.trigger_price > planned.take_profit.trigger_price
    [stop] = [o for o in await world.open_orders() if o.role.value == "sl"]
    assert stop.trigger_price == level

