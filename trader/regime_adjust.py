"""The volatility regime on open positions, pure: when the regime changes, the stop-loss and
take-profit of an open position follow the regime's multipliers (EXTREME: stop distance
x1.5, target x1.2; HIGH x1.3 / x1.15; LOW x0.8 / x0.9; trader/strategy/regime.py), the
same multipliers its entry was planned with.

Entries are refused in EXTREME, so the widening only ever applies to positions opened
before the regime turned; it returns to the planned legs when the regime does.

The rule, per leg, measured from the entry price and the legs as planned at entry
(`Position.regime`, a `RegimeAnchor`):

    distance(regime) = planned distance x multiplier(regime) / multiplier(planned regime)

- a stop still where the regime rule last put it follows the new distance, wider or
  tighter; a stop moved since (breakeven, trailing, by hand) is never loosened: it only
  takes the new level if that is tighter;
- a take-profit still where the rule put it follows; one moved by hand stays;
- a level the mark has already passed (a tightened stop or target that would fire at
  once, Binance -2021) is not taken: the leg stays where it is;
- each new level is rounded once, onto the tick grid, away from the entry (as entries are
  planned, trader/risk.py: the distance asked for is a minimum).

Moving a leg is a change of its trigger price; `trader.protection` carries it out
new-first (the old order stays until the new one is live).
"""

from dataclasses import replace
from decimal import Decimal

from loguru import logger

from trader.domain import Side, SymbolRules
from trader.management import stop_crossed, tighter_stop
from trader.position import Leg, Position, PositionState, RegimeAnchor
from trader.strategy.regime import LEG_MULTIPLIERS, Regime

Levels = tuple[Decimal, Decimal]      # (stop-loss trigger, take-profit trigger)


def anchor(regime: Regime, stop: Decimal, take_profit: Decimal) -> RegimeAnchor:
    """The anchor of legs planned (or adopted) under `regime`."""
    return RegimeAnchor(regime.value, regime.value, stop, take_profit)


def levels_for(side: Side, entry_price: Decimal, planned: RegimeAnchor, regime: Regime,
               rules: SymbolRules) -> Levels | None:
    """The stop-loss and take-profit triggers for `regime`, from the legs as planned; None
    when the plan is not usable (a level on the wrong side of the entry, or not a price)."""
    planned_regime = Regime(planned.planned)
    sl_ratio = LEG_MULTIPLIERS[regime][0] / LEG_MULTIPLIERS[planned_regime][0]
    tp_ratio = LEG_MULTIPLIERS[regime][1] / LEG_MULTIPLIERS[planned_regime][1]
    stop_distance = (entry_price - planned.stop) * side.sign
    target_distance = (planned.take_profit - entry_price) * side.sign
    if stop_distance <= 0 or target_distance <= 0:
        return None
    # Away from the entry: a long's stop down and target up, a short's the other way.
    stop = rules.round_price(entry_price - side.sign * stop_distance * sl_ratio,
                             up=side is Side.SELL)
    take_profit = rules.round_price(entry_price + side.sign * target_distance * tp_ratio,
                                    up=side is Side.BUY)
    if stop <= 0 or take_profit <= 0:
        return None
    return stop, take_profit


def follow(position: Position, regime: Regime | None, mark: Decimal | None,
           rules: SymbolRules) -> Position:
    """`position` with its legs' trigger prices following `regime` (see the module
    docstring); unchanged while the regime is unknown or the same. A position without an
    anchor (adopted, or recorded before anchors existed) is anchored at its current legs."""
    if regime is None or mark is None or position.state is not PositionState.PROTECTED:
        return position
    current = position.regime
    if current is None:
        return replace(position, regime=anchor(regime, position.stop.trigger_price,
                                               position.take_profit.trigger_price))
    if current.applied == regime.value:
        return position
    if position.stop.pending is not None or position.take_profit.pending is not None:
        # A placement whose answer is not known yet would set the plan back to its own
        # trigger when it lands: follow the regime once it has.
        return position
    following = replace(position, regime=replace(current, applied=regime.value))
    before = levels_for(position.side, position.entry_price, current, Regime(current.applied),
                        rules)
    after = levels_for(position.side, position.entry_price, current, regime, rules)
    if before is None or after is None:
        return following
    stop = _stop_level(position, before[0], after[0], mark)
    take_profit = _target_level(position, before[1], after[1], mark)
    if (stop, take_profit) != (position.stop.trigger_price, position.take_profit.trigger_price):
        logger.info("regime {} -> {} moves the legs symbol={} stop={} -> {} target={} -> {}",
                    current.applied, regime.value, position.symbol,
                    position.stop.trigger_price, stop, position.take_profit.trigger_price,
                    take_profit)
    return following.with_leg(_moved(position.stop, stop)).with_leg(
        _moved(position.take_profit, take_profit))


def _stop_level(position: Position, ruled: Decimal, wanted: Decimal, mark: Decimal) -> Decimal:
    """The new stop: the regime's level if the stop is still the rule's, else only tighter;
    never one the mark has already passed."""
    current = position.stop.trigger_price
    untouched = current == ruled and not (position.breakeven_done or position.trailing_active)
    level = wanted if untouched else tighter_stop(position.side, wanted, current)
    return current if stop_crossed(position.side, level, mark) else level


def _target_level(position: Position, ruled: Decimal, wanted: Decimal,
                  mark: Decimal) -> Decimal:
    """The new take-profit: the regime's level if the target is still the rule's (one moved
    by hand stays); never one the mark has already reached."""
    current = position.take_profit.trigger_price
    if current != ruled:
        return current
    reached = mark >= wanted if position.side is Side.BUY else mark <= wanted
    return current if reached else wanted


def _moved(leg: Leg, trigger_price: Decimal) -> Leg:
    if trigger_price == leg.trigger_price:
        return leg
    return replace(leg, trigger_price=trigger_price, failures=0, retry_at=None)
