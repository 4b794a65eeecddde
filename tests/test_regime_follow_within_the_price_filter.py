"""The volatility regime's follow never aims a leg past the symbol's PRICE_FILTER bounds
(minPrice / maxPrice, "minimum / maximum price/stopPrice allowed":
https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition,
Filters): a widening that would carry the stop past minPrice moves it to minPrice, the
furthest level Binance takes. Aimed past it, the move was refused (-4013) and given up with
a PROTECTION alert, and again at every regime change that aimed there."""

from dataclasses import replace
from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.test_rules_regime import MARK, RULES, calm_long, long_position, violent_candle
from trader.regime_adjust import follow
from trader.strategy.regime import Regime

D = Decimal


def test_a_widening_past_min_price_stops_at_min_price() -> None:
    """Planned 49,000 in NORMAL; EXTREME wants 48,500, below minPrice 48,800."""
    floor = replace(RULES, min_price=D("48800"))
    moved = follow(long_position(), Regime.EXTREME, MARK, floor)
    assert moved.stop.trigger_price == D("48800")
    assert moved.take_profit.trigger_price == D("52400")


def test_a_stop_at_the_bound_is_not_aimed_past_it_again() -> None:
    """A stop anchored at minPrice (an adopted stop placed at the bound) stays there."""
    floor = replace(RULES, min_price=D("49000"))
    moved = follow(long_position(), Regime.EXTREME, MARK, floor)
    assert moved.stop.trigger_price == D("49000")


def test_a_long_target_past_max_price_stops_at_max_price() -> None:
    ceiling = replace(RULES, max_price=D("52200"))
    moved = follow(long_position(), Regime.EXTREME, MARK, ceiling)
    assert moved.take_profit.trigger_price == D("52200")


async def test_extreme_volatility_moves_the_stop_to_min_price_without_a_refusal(tmp_path):
    """Real engine on the paper exchange (its simulator refuses a stopPrice past the
    filter with Binance's -4013): a long planned 2 % below the entry in a calm market, a
    minPrice 2.5 % below; violent candles turn the regime EXTREME (3 % wanted). The stop
    goes to minPrice, no move is refused, no alert."""
    world = await calm_long(tmp_path)
    entry = world.engine.positions[SYMBOL].entry_price
    floor = world.paper.rules(SYMBOL).round_price(entry * D("0.975"), up=False)
    world.paper.sim.set_rules(replace(world.paper.rules(SYMBOL), min_price=floor))
    seen: set[str] = set()
    for _ in range(6):
        await violent_candle(world, entry)
        seen.add(world.engine.counters.get(SYMBOL, "regime_state"))
    assert "EXTREME" in seen
    held = world.engine.positions[SYMBOL]
    assert held.stop.trigger_price == floor
    [stop] = [o for o in await world.open_orders() if o.role.value == "sl"]
    assert stop.trigger_price == floor
    assert world.alerts("PROTECTION") == []
