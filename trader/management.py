"""Managing an open position, pure: the exit plan, partial take-profit, stop to breakeven,
trailing stop and the time-in-trade exit. `trader.lifecycle.step` calls these on every tick
and turns the answers into actions; moving a stop is a change of the stop leg's trigger
price, which `trader.protection` carries out new-first (the old stop stays until the new
one is live).

Exit plans (TRADEBOT_EXIT_PLAN, fixed for a position when it is planned):
- `one`: one exchange-side take-profit for the whole position at the strategy's target;
  at a first, small profit (`partial_tp_trigger`) half is closed at market and the stop
  goes to breakeven; the trail starts at the signal's activation profit.
- `two`: two reduce-only exchange-side TAKE_PROFIT_MARKET orders. TP1 closes
  TRADEBOT_TP1_FRACTION of the position at TRADEBOT_TP1_R times the stop distance from
  the entry; TP2 closes the rest at the strategy's target. Nothing is sent at market in
  the fast part: the exchange fills TP1, and then the stop goes to breakeven for what is
  left (new-first) while TP2 stays. The trail starts once TP1 has filled and it never
  replaces TP2: the runner rides between the trailing stop and TP2. That is how the
  trailing stops of hummingbot's triple barrier (an activation profit, then a stop a
  trailing delta behind the price, next to a take-profit that still closes the position)
  and freqtrade's trailing_stop_positive_offset (trailing only once the profit reached an
  offset below the target) are used. A trail "from TP2's level" cannot work with TP2 on
  the exchange: TP2 fills the moment the price reaches its level, and replacing it before
  would race the market and leave the runner without a take-profit for a while.
  A position too small to split (either part below the symbol's minimum quantity or
  notional) or whose TP1 would not lie between the entry and TP2 keeps the one-TP plan.
  So does, from then on, one whose TP1 lost its part: the position came to no more than
  TP2's planned part (a maker entry filled in part and gave up the rest, a stop filled in
  part, a reduction by hand: `Position.leg_quantity` shrinks TP1 first), so TP1 can never
  fill and its breakeven and trail would never come (`first_target_gone`). The switch is
  made when the one-TP plan's first rule is due (its partial's profit, or the trail's
  activation), not before: until then neither plan does anything more, and a maker entry
  still working may fill the rest and give TP1 its part back. It is read from the record
  alone (sizes and TP1's leg), so a restart decides the same, and it is saved with it.

Trailing (TRADEBOT_TRAILING_DISTANCE, "0.3%" or "1.5atr"): the stop stays that distance
behind the best price since entry (`Position.best_price`, updated from the mark on every
tick and saved with the position), never behind the current price: a pullback leaves it
where it is, and it only ever tightens.

Rounding (docs/ARCHITECTURE.md, "Prices"): every trigger price is rounded once, here,
where it is planned, onto the symbol's tick grid, in the direction that keeps the rule's
promise: breakeven in the position's favour (a fill there still covers the fees), the
trailing stop away from the mark (never tighter than the distance asked), TP1 away from
the entry (like every planned target, trader/risk.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from trader.domain import ZERO, Candle, OrderRole, Side
from trader.evolve import evolve
from trader.market.candle_window import CandleWindow
from trader.market.indicators import atr
from trader.position import ExitPlan, Leg, Position, PositionState
from trader.symbol_rules import SymbolRules

TRAIL_ATR_PERIOD = 14
# Read on every tick: module names, not enum members through their class (~0.1 us each).
PROTECTED, ONE, TWO = PositionState.PROTECTED, ExitPlan.ONE, ExitPlan.TWO
BUY, SELL = Side.BUY, Side.SELL

DEFAULT_PARTIAL_TRIGGER = Decimal("0.0050")
PARTIAL_TRIGGERS = {
    # Liquid majors move in smaller steps, so their first target comes earlier.
    "BTCUSDT": Decimal("0.0035"),
    "ETHUSDT": Decimal("0.0040"),
    "BNBUSDT": Decimal("0.0045"),
    "SOLUSDT": Decimal("0.0045"),
}


def partial_tp_trigger(symbol: str) -> Decimal:
    """Profit (fraction of entry) that triggers the partial take-profit, in [0.35 %, 0.50 %]."""
    return PARTIAL_TRIGGERS.get(symbol.upper(), DEFAULT_PARTIAL_TRIGGER)


def profit_pct(pos: Position, mark: Decimal) -> Decimal:
    """Unrealised move in the position's favour as a fraction of the entry price."""
    if pos.entry_price <= ZERO:      # a Decimal: compared without converting an int
        return ZERO
    return (mark - pos.entry_price) / pos.entry_price * pos.side.sign


def should_take_partial(pos: Position, mark: Decimal) -> bool:
    """True once a protected position of the one-TP plan that has not taken its partial
    reaches the trigger (the two-TP plan's TP1 is on the exchange instead)."""
    return (pos.state is PROTECTED and not pos.partial_taken and pos.exit_plan is ONE
            and pos.quantity > ZERO and profit_pct(pos, mark) >= partial_tp_trigger(pos.symbol))


def partial_quantity(pos: Position, rules: SymbolRules, fraction: Decimal = Decimal("0.5"),
                     price: Decimal | None = None) -> Decimal:
    """The part to close, rounded down to the step; 0 when it is not worth an order.

    0 when the part or the remainder would fall below the min qty or min notional
    (valued at `price`, default the entry): a dust remainder could not be closed later.
    """
    value_at = price if price is not None else pos.entry_price
    part = rules.round_qty(pos.quantity * fraction)
    remainder = pos.quantity - part
    for amount in (part, remainder):
        if amount <= 0 or amount < rules.min_qty or amount * value_at < rules.min_notional:
            return ZERO
    return part


def breakeven_price(pos: Position, fee_rate: Decimal, rules: SymbolRules) -> Decimal:
    """Entry moved by the round-trip fees, rounded to the tick in the position's favour
    (up for a long, down for a short), so a fill at the stop does not lose money."""
    shifted = pos.entry_price * (1 + pos.side.sign * 2 * fee_rate)
    return rules.round_price(shifted, up=pos.side is BUY)


# --- the exit plan ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FirstTarget:
    """The two-TP plan's TP1 (TRADEBOT_TP1_FRACTION, TRADEBOT_TP1_R): `fraction` of the
    quantity, at `r` times the stop distance from the entry."""
    fraction: Decimal = Decimal("0.5")
    r: Decimal = Decimal("1")


def with_exit_plan(pos: Position, first_target: FirstTarget | None,
                   rules: SymbolRules) -> Position:
    """The planned position (ENTERING, legs planned) with its exit plan: unchanged for the
    one-TP plan (`first_target` None) and when TP1 does not fit (see the module docstring);
    else TP1's leg and part added and the plan marked TWO."""
    if first_target is None:
        return pos
    sign, entry = pos.side.sign, pos.entry_price
    stop_distance = (entry - pos.stop.trigger_price) * sign
    level = rules.round_price(entry + sign * first_target.r * stop_distance,
                              up=pos.side is BUY)
    if stop_distance <= 0 or (level - entry) * sign <= 0 \
            or (pos.take_profit.trigger_price - level) * sign <= 0:
        return pos
    part = rules.round_qty(pos.quantity * first_target.fraction)
    for amount in (part, pos.quantity - part):
        if amount <= 0 or amount < rules.min_qty or amount * entry < rules.min_notional:
            return pos
    return evolve(pos, exit_plan=ExitPlan.TWO, tp1_quantity=part,
                  take_profit_1=Leg(OrderRole.TAKE_PROFIT_1, level))


def first_target_gone(pos: Position, mark: Decimal) -> bool:
    """A protected position of the two-TP plan whose TP1 has no part left and nothing on
    the exchange, once the one-TP plan would act: at its partial's profit or the trail's
    activation (see the module docstring). `one_tp_plan` is the position from then on.
    Nothing on the exchange (no order, no placement unanswered): a TP1 that filled can show
    as a smaller position before its own fill is reported; its order is cancelled first
    (trader/protection.py), and the cancel's read-back reports that fill as TP1's, so the
    market partial is never a second profit taken."""
    first = pos.take_profit_1
    if first is None or pos.state is not PROTECTED or pos.partial_taken \
            or first.order is not None or first.pending is not None or first.superseded \
            or pos.leg_quantity(OrderRole.TAKE_PROFIT_1) > 0:
        return False
    profit = profit_pct(pos, mark)
    return profit >= partial_tp_trigger(pos.symbol) or profit >= pos.trail_activation


def one_tp_plan(pos: Position) -> Position:
    """The position under the one-TP plan: TP1's leg retired (TP2's order, for the whole
    quantity already, is the one take-profit), out of the regime's anchor too."""
    anchor = pos.regime
    return evolve(pos, exit_plan=ONE, take_profit_1=None, tp1_quantity=ZERO,
                  regime=None if anchor is None else evolve(anchor, take_profit_1=None))


def first_target_filled(pos: Position) -> Position:
    """TP1 filled: its leg is retired (TP2 takes whatever is left) and the stop is due at
    breakeven (`partial_taken`, the same aim as after the one-TP plan's market partial)."""
    return evolve(pos, take_profit_1=None, partial_taken=True)


# --- trailing -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrailingDistance:
    """How far the trailing stop stays behind the best price (TRADEBOT_TRAILING_DISTANCE):
    `amount` as a fraction of the price ("0.3%" -> 0.003), or as a multiple of the
    average true range of the trading candles ("1.5atr" -> 1.5 x ATR(14))."""
    amount: Decimal
    in_atr: bool = False

    @classmethod
    def parse(cls, text: str) -> "TrailingDistance":
        """ "0.3%" or "1.5atr" (case and spaces ignored); ValueError for anything else."""
        cleaned = text.strip().lower().replace(" ", "")
        unit = "atr" if cleaned.endswith("atr") else "%" if cleaned.endswith("%") else ""
        try:
            amount = Decimal(cleaned[:-len(unit)]) if unit else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount <= 0:
            raise ValueError(f"{text!r} is not a trailing distance: give a percentage of "
                             "the price like 0.3% or an ATR multiple like 1.5atr")
        if unit == "%":
            if amount >= 100:
                raise ValueError(f"{text!r}: a trailing distance must be below 100%")
            return cls(amount / 100)
        return cls(amount, in_atr=True)

    def __str__(self) -> str:
        if self.in_atr:
            return f"{self.amount.normalize():f}atr"
        return f"{(self.amount * 100).normalize():f}%"

    def gap(self, best: Decimal, average_range: Decimal | None) -> Decimal | None:
        """The distance in price behind `best`; None for an ATR multiple without an ATR."""
        if not self.in_atr:
            return best * self.amount
        if average_range is None or average_range <= 0:
            return None
        return self.amount * average_range


# TRADEBOT_TRAILING_DISTANCE's default: half the default strategy's 0.6 % activation.
DEFAULT_TRAILING_DISTANCE = TrailingDistance(Decimal("0.003"))


def trail_atr(candles: Sequence[Candle]) -> Decimal | None:
    """ATR(14) of the latest closed candles, for an ATR trailing distance (None without
    enough candles: the trail then waits, the stop stays where it is). A history's window
    gives it from the true ranges the history keeps (the strategy's ATR computed them)."""
    if type(candles) is CandleWindow:
        return candles.atr(3 * TRAIL_ATR_PERIOD, TRAIL_ATR_PERIOD)
    return atr(candles[-3 * TRAIL_ATR_PERIOD:], TRAIL_ATR_PERIOD)


def trailing_due(pos: Position, mark: Decimal) -> bool:
    """Whether the stop trails now: once active it stays active; the two-TP plan starts it
    when TP1 has filled, the one-TP plan at the signal's activation profit."""
    if pos.trailing_active:
        return True
    if pos.exit_plan is TWO:
        return pos.partial_taken
    return profit_pct(pos, mark) >= pos.trail_activation


def best_price(pos: Position, mark: Decimal) -> Decimal:
    """The most favourable price seen so far, including `mark`."""
    previous = pos.best_price if pos.best_price is not None else pos.entry_price
    return max(previous, mark) if pos.side is BUY else min(previous, mark)


def trailing_stop(pos: Position, mark: Decimal, rules: SymbolRules,
                  distance: TrailingDistance | None = None,
                  average_range: Decimal | None = None) -> Decimal | None:
    """The trailing stop for this mark, or None while the trail is not due (`trailing_due`)
    or its ATR is unknown.

    The stop trails the best price (`best_price`: never the mark itself) by `distance`
    (default `DEFAULT_TRAILING_DISTANCE`), rounded to the tick away from the mark, and it
    only ever tightens: it is never looser than the current stop. If the mark has already retraced past the trail, the stop is at or beyond the
    mark: see `stop_crossed`.
    """
    if not trailing_due(pos, mark):
        return None
    best = best_price(pos, mark)
    gap = (distance or DEFAULT_TRAILING_DISTANCE).gap(best, average_range)
    if gap is None:
        return None
    candidate = rules.round_price(best - pos.side.sign * gap, up=pos.side is SELL)
    return tighter_stop(pos.side, candidate, pos.stop.trigger_price)


def tighter_stop(side: Side, candidate: Decimal, current: Decimal) -> Decimal:
    """The tighter of two stops (higher for a long, lower for a short): stops never loosen."""
    return max(candidate, current) if side is BUY else min(candidate, current)


def stop_crossed(side: Side, stop: Decimal, mark: Decimal) -> bool:
    """True when a stop at `stop` would trigger at once (Binance answers -2021): exit instead."""
    return mark <= stop if side is BUY else mark >= stop


def time_exit_due(pos: Position, now: datetime) -> bool:
    """True once an open position has been held for its time limit."""
    return pos.state.open and now - pos.opened_at >= pos.time_limit
