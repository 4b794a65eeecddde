"""The volatility regime on open positions, pure: when the regime changes, the stop-loss and
take-profit(s) of an open position follow the regime's multipliers (EXTREME: stop distance
x1.5, target x1.2; HIGH x1.3 / x1.15; LOW x0.8 / x0.9; trader/strategy/regime.py), the
same multipliers its entry was planned with.

Entries are refused in EXTREME, so the widening only ever applies to positions opened
before the regime turned; it returns to the planned legs when the regime does.

The rule, per leg, measured from the entry price and the legs as planned at entry
(`Position.regime`, a `RegimeAnchor`):

    distance(regime) = planned distance x multiplier(regime) / multiplier(planned regime)

- a stop still where the regime rule last put it follows the new distance, wider or
  tighter; a stop moved since by breakeven or trailing is never loosened: it only takes
  the new level if that is tighter;
- a stop of our own position found again on a wiped disk (`Position.picked_up`) is
  never loosened either: it may be the operator's /sl or a trailed level, which the
  wiped record no longer tells; it only takes a tighter level;
- a stop where the operator's /sl set it (`Position.operator_stop`) stays: the operator
  chose that room (or that tightness) on purpose, and the rule scales the agent's plan,
  not the operator's choice (as a take-profit moved by hand stays). It follows again
  once something else moved it (the trail, breakeven: only tighter, as above);
- a take-profit still where the rule put it follows; one moved by hand stays;
- two-TP plan: TP1, until it fills, follows by the same rule as the final target (its
  distance from the entry scales by the target's multiplier), but never beyond the final
  target's new level (where rounding or a target moved by hand would put it past, it sits
  at the target's level: the two close the position there together);
- a level the mark has already passed (a tightened stop or target that would fire at
  once, Binance -2021) is not taken: the leg stays where it is;
- each new level is rounded once, onto the tick grid, away from the entry (as entries are
  planned, trader/risk.py: the distance asked for is a minimum), and held within the
  symbol's PRICE_FILTER bounds: a level past minPrice / maxPrice is the bound, the
  furthest Binance takes (aimed past it, the move would be refused and given up, with an
  alert at every regime change that aimed there again).

Moving a leg is a change of its trigger price; `trader.protection` carries it out
new-first (the old order stays until the new one is live).
"""

from decimal import Decimal

from loguru import logger

from trader.domain import Side
from trader.evolve import evolve
from trader.management import stop_crossed, tighter_stop
from trader.position import Leg, Position, PositionState, RegimeAnchor
from trader.strategy.regime import LEG_MULTIPLIERS, Regime
from trader.symbol_rules import SymbolRules

Levels = tuple[Decimal, Decimal]      # (stop-loss trigger, take-profit trigger)
PROTECTED = PositionState.PROTECTED


def anchor(regime: Regime, stop: Decimal, take_profit: Decimal,
           first_target: Decimal | None = None) -> RegimeAnchor:
    """The anchor of legs planned (or adopted) under `regime`; `first_target`: TP1's
    trigger under the two-TP plan (None: no TP1)."""
    return RegimeAnchor(regime.value, regime.value, stop, take_profit, first_target)


def with_first_target(position: Position) -> Position:
    """The planned position with TP1's trigger (added by the exit plan,
    `trader.management.with_exit_plan`) in its anchor, so that TP1 follows the regime too;
    unchanged without TP1 or without an anchor."""
    first, current = position.take_profit_1, position.regime
    if first is None or current is None:
        return position
    return evolve(position, regime=evolve(current, take_profit_1=first.trigger_price))


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
    take_profit = _scaled_target(side, entry_price, planned.take_profit, tp_ratio, rules)
    if stop <= 0 or take_profit is None:
        return None
    return _allowed(stop, rules), _allowed(take_profit, rules)


def first_target_for(side: Side, entry_price: Decimal, planned: RegimeAnchor, regime: Regime,
                     rules: SymbolRules) -> Decimal | None:
    """TP1's trigger for `regime`: its distance scaled by the take-profit multiplier, as the
    final target's, and never beyond the final target's level for `regime` (rounding can
    bring the two onto one tick); None without a planned TP1 or when it is not usable."""
    levels = levels_for(side, entry_price, planned, regime, rules)
    if planned.take_profit_1 is None or levels is None:
        return None
    ratio = LEG_MULTIPLIERS[regime][1] / LEG_MULTIPLIERS[Regime(planned.planned)][1]
    first = _scaled_target(side, entry_price, planned.take_profit_1, ratio, rules)
    return None if first is None else _nearer(side, _allowed(first, rules), levels[1])


def _allowed(level: Decimal, rules: SymbolRules) -> Decimal:
    """`level`, or the PRICE_FILTER bound it is past (the nearest level Binance takes)."""
    return rules.nearest_allowed_price(level) or level


def _scaled_target(side: Side, entry_price: Decimal, planned: Decimal, ratio: Decimal,
                   rules: SymbolRules) -> Decimal | None:
    """A take-profit `ratio` times as far from the entry as `planned`, rounded away from it;
    None when `planned` is not beyond the entry or the result is not a price."""
    distance = (planned - entry_price) * side.sign
    if distance <= 0:
        return None
    level = rules.round_price(entry_price + side.sign * distance * ratio, up=side is Side.BUY)
    return level if level > 0 else None


def follow(position: Position, regime: Regime | None, mark: Decimal | None,
           rules: SymbolRules) -> Position:
    """`position` with its legs' trigger prices following `regime` (see the module
    docstring); unchanged while the regime is unknown or the same. A position without an
    anchor (adopted, or recorded before anchors existed) is anchored at its current legs."""
    if regime is None or mark is None or position.state is not PROTECTED:
        return position
    current = position.regime
    if current is None:
        first = position.take_profit_1
        return evolve(position, regime=anchor(regime, position.stop.trigger_price,
                                               position.take_profit.trigger_price,
                                               None if first is None else first.trigger_price))
    if current.applied == regime:     # a StrEnum equals its value
        return position
    if any(leg.pending is not None for leg in position.legs):
        # A placement whose answer is not known yet would set the plan back to its own
        # trigger when it lands: follow the regime once it has.
        return position
    applied = evolve(current, applied=regime.value)
    before = levels_for(position.side, position.entry_price, current, Regime(current.applied),
                        rules)
    after = levels_for(position.side, position.entry_price, current, regime, rules)
    if before is None or after is None:
        return evolve(position, regime=applied)
    stop = _stop_level(position, before[0], after[0], mark)
    take_profit = _target_level(position.side, position.take_profit.trigger_price, before[1],
                                after[1], mark)
    legs = {"stop": _moved(position.stop, stop),
            "take_profit": _moved(position.take_profit, take_profit)}
    first = position.take_profit_1
    if first is not None:
        level = _first_target_level(position, current, regime, take_profit, mark, rules)
        legs["take_profit_1"] = _moved(first, level)
    following = evolve(position, regime=applied, **legs)     # one copy for all the changes
    if following.legs != position.legs:
        logger.info("regime {} -> {} moves the legs symbol={} {}", current.applied,
                    regime.value, position.symbol, " ".join(
                        f"{leg.role.value}={leg.trigger_price} -> {moved.trigger_price}"
                        for leg, moved in zip(position.legs, following.legs, strict=True)))
    return following


def _stop_level(position: Position, ruled: Decimal, wanted: Decimal, mark: Decimal) -> Decimal:
    """The new stop: the regime's level if the stop is still the rule's, else only tighter;
    never one the mark has already passed."""
    current = position.stop.trigger_price
    if current == position.operator_stop:
        return current
    untouched = current == ruled and not (position.breakeven_done or position.trailing_active
                                          or position.picked_up)
    level = wanted if untouched else tighter_stop(position.side, wanted, current)
    return current if stop_crossed(position.side, level, mark) else level


def _target_level(side: Side, current: Decimal, ruled: Decimal, wanted: Decimal,
                  mark: Decimal) -> Decimal:
    """A take-profit's new trigger: the regime's level if it is still the rule's (one moved
    by hand stays); never one the mark has already reached."""
    if current != ruled:
        return current
    reached = mark >= wanted if side is Side.BUY else mark <= wanted
    return current if reached else wanted


def _first_target_level(position: Position, planned: RegimeAnchor, regime: Regime,
                        target: Decimal, mark: Decimal, rules: SymbolRules) -> Decimal:
    """TP1's new trigger (`position.take_profit_1` is there), by the take-profit rule and
    never beyond `target` (the final target's new trigger); it stays where it is when the
    anchor has no TP1 (recorded before TP1 was anchored)."""
    assert position.take_profit_1 is not None
    side, current = position.side, position.take_profit_1.trigger_price
    ruled = first_target_for(side, position.entry_price, planned, Regime(planned.applied),
                             rules)
    wanted = first_target_for(side, position.entry_price, planned, regime, rules)
    if ruled is None or wanted is None:
        return current
    return _nearer(side, _target_level(side, current, ruled, wanted, mark), target)


def _nearer(side: Side, level: Decimal, other: Decimal) -> Decimal:
    """Of two take-profit levels, the one nearer the entry (reached first)."""
    return min(level, other) if side is Side.BUY else max(level, other)


def _moved(leg: Leg, trigger_price: Decimal) -> Leg:
    if trigger_price == leg.trigger_price:
        return leg
    return evolve(leg, trigger_price=trigger_price, failures=0, retry_at=None)
