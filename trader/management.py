"""Managing an open position, pure: partial take-profit, stop to breakeven, trailing stop
and the time-in-trade exit. `trader.lifecycle.step` calls these on every tick and turns the
answers into actions; moving a stop is a change of the stop leg's trigger price, which
`trader.protection` carries out new-first (the old stop stays until the new one is live).

Rounding (docs/ARCHITECTURE.md, "Prices"): every trigger price is rounded once, here,
where it is planned, onto the symbol's tick grid, in the direction that keeps the rule's
promise: breakeven in the position's favour (a fill there still covers the fees), the
trailing stop away from the mark (never tighter than the distance asked).
"""

from datetime import datetime
from decimal import Decimal

from trader.domain import ZERO, Side, SymbolRules
from trader.position import Position, PositionState

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
    if pos.entry_price <= 0:
        return ZERO
    return (mark - pos.entry_price) / pos.entry_price * pos.side.sign


def should_take_partial(pos: Position, mark: Decimal) -> bool:
    """True once a protected position that has not taken its partial reaches the trigger."""
    return (pos.state is PositionState.PROTECTED and not pos.partial_taken
            and pos.quantity > 0 and profit_pct(pos, mark) >= partial_tp_trigger(pos.symbol))


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
    return rules.round_price(shifted, up=pos.side is Side.BUY)


def best_price(pos: Position, mark: Decimal) -> Decimal:
    """The most favourable price seen so far, including `mark`."""
    previous = pos.best_price if pos.best_price is not None else pos.entry_price
    return max(previous, mark) if pos.side is Side.BUY else min(previous, mark)


def trailing_stop(pos: Position, mark: Decimal, rules: SymbolRules,
                  distance_pct: Decimal | None = None) -> Decimal | None:
    """The trailing stop for this mark, or None before the activation profit.

    The stop trails the best price by `distance_pct` (default half the activation, so it
    locks in at least half of it), rounded to the tick away from the mark, and it only
    ever tightens: it is never looser than the current stop. If the mark has already
    retraced past the trail, the stop is at or beyond the mark: see `stop_crossed`.
    """
    if not pos.trailing_active and profit_pct(pos, mark) < pos.trail_activation:
        return None
    distance = distance_pct if distance_pct is not None else pos.trail_activation / 2
    best = best_price(pos, mark)
    candidate = rules.round_price(best * (1 - pos.side.sign * distance), up=pos.side is Side.SELL)
    return tighter_stop(pos.side, candidate, pos.stop.trigger_price)


def tighter_stop(side: Side, candidate: Decimal, current: Decimal) -> Decimal:
    """The tighter of two stops (higher for a long, lower for a short): stops never loosen."""
    return max(candidate, current) if side is Side.BUY else min(candidate, current)


def stop_crossed(side: Side, stop: Decimal, mark: Decimal) -> bool:
    """True when a stop at `stop` would trigger at once (Binance answers -2021): exit instead."""
    return mark <= stop if side is Side.BUY else mark >= stop


def time_exit_due(pos: Position, now: datetime) -> bool:
    """True once an open position has been held for its time limit."""
    return pos.state.open and now - pos.opened_at >= pos.time_limit
