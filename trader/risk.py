"""Risk: the equity-linked risk fraction, stop clamps, adaptive reward/risk, position
sizing with portfolio heat, position cap and margin checks, and the open/close decision
for a signal against the current position (never a flip).

Everything is pure: the engine passes equity, free margin, open risk and exchange rules
in, and gets an `EntryPlan` or a `Skip` with a reason it can log and show on /status.

Rounding rules (all on the safe side):
- quantity is rounded DOWN to the step size, so the money at risk never exceeds the
  budget;
- the stop is rounded AWAY from the entry (a long's stop down, a short's up), so the
  stop distance never shrinks below the clamped distance, and the risk is computed from
  the rounded stop. Only if that pushes the distance past the upper clamp (2 %) is it
  rounded toward the entry instead; the final distance is always inside the clamps;
- the take-profit is rounded away from the entry too, so the reward never shrinks.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from loguru import logger

from trader.domain import ZERO, Side, Signal, SymbolRules
from trader.position import Position
from trader.strategy.regime import Regime, RegimeAdjustment

MIN_FREE_MARGIN = Decimal("10")   # USDT; below this Binance answers -2019 soon enough


def risk_fraction(equity: Decimal, peak_equity: Decimal, current: Decimal,
                  base: Decimal = Decimal("0.025"), drawdown_step: Decimal = Decimal("0.05"),
                  reduced: Decimal = Decimal("0.015"), floor: Decimal = Decimal("0.01"),
                  ceiling: Decimal = Decimal("0.03")) -> Decimal:
    """The risk fraction to use now, from persisted (exchange-checked) equity values.

    A drawdown from the peak of `drawdown_step` or more drops to `reduced`; a new equity
    high (equity >= peak) restores `base`; anything in between keeps `current` (so a
    small recovery does not flip the fraction back and forth). Always in [floor, ceiling].
    """
    if peak_equity <= 0:
        chosen = current
    elif equity >= peak_equity:
        chosen = base
    elif (peak_equity - equity) / peak_equity >= drawdown_step:
        chosen = reduced
    else:
        chosen = current
    return min(max(chosen, floor), ceiling)


def clamp_stop_pct(sl_pct: Decimal, low: Decimal = Decimal("0.004"),
                   high: Decimal = Decimal("0.02")) -> Decimal:
    """The stop distance (fraction of price) clamped to [low, high]."""
    return min(max(sl_pct, low), high)


_REWARD_RISK = {
    # regime: (trending, ranging)
    Regime.EXTREME: (Decimal("1.5"), Decimal("1.2")),
    Regime.HIGH: (Decimal("1.8"), Decimal("1.3")),
    Regime.NORMAL: (Decimal("2.0"), Decimal("1.5")),
    Regime.LOW: (Decimal("1.5"), Decimal("1.2")),
}


def reward_risk(regime: Regime, trending: bool) -> Decimal:
    """The minimum take-profit distance as a multiple of the stop distance.

    Trends run, so they get a wider target; ranges revert, so the target is nearer.
    Quiet (LOW) and wild (HIGH/EXTREME) markets get nearer targets than NORMAL ones.
    """
    trending_rr, ranging_rr = _REWARD_RISK[regime]
    return trending_rr if trending else ranging_rr


@dataclass(frozen=True, slots=True)
class SizingInput:
    symbol: str
    side: Side
    price: Decimal                    # expected entry price (mark or last)
    equity: Decimal
    free_margin: Decimal
    risk_fraction: Decimal
    signal: Signal
    regime: RegimeAdjustment
    rules: SymbolRules
    leverage: int
    open_risk: Decimal                # money at risk in the other open positions
    max_heat: Decimal                 # max total open risk / equity (0.06)
    max_position_pct: Decimal         # max notional / (equity x leverage)
    taker_fee: Decimal = Decimal("0.0005")
    trending: bool = False
    min_free_margin: Decimal = MIN_FREE_MARGIN
    sl_low: Decimal = Decimal("0.004")
    sl_high: Decimal = Decimal("0.02")


@dataclass(frozen=True, slots=True)
class EntryPlan:
    quantity: Decimal
    stop_trigger: Decimal
    take_profit_trigger: Decimal
    risk_amount: Decimal              # loss at the stop incl. taker fees on both legs
    notional: Decimal
    margin: Decimal                   # notional / leverage + fees (entry and exit)
    sl_pct: Decimal                   # actual distances after tick rounding
    tp_pct: Decimal


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


def plan_entry(i: SizingInput) -> EntryPlan | Skip:
    """Size one entry, or say why not. See the module docstring for the rounding rules."""
    problem = _precheck(i)
    if problem:
        return _skip(i, problem)
    sl_pct = clamp_stop_pct(i.signal.sl_pct * i.regime.sl_mult, i.sl_low, i.sl_high)
    tp_pct = max(i.signal.tp_pct * i.regime.tp_mult,
                 sl_pct * reward_risk(i.regime.regime, i.trending))
    stop_trigger = _stop_price(i, sl_pct)
    if stop_trigger is None:
        return _skip(i, f"tick size {i.rules.tick_size} too coarse for a stop within "
                        f"{i.sl_low:.2%}..{i.sl_high:.2%} of {i.price}")
    take_profit_trigger = i.rules.round_price(i.price * (1 + i.side.sign * tp_pct), up=i.side is Side.BUY)
    if take_profit_trigger <= 0:
        return _skip(i, f"take-profit {tp_pct:.2%} below a short's entry is not a price")
    loss_per_unit = abs(i.price - stop_trigger) + i.taker_fee * (i.price + stop_trigger)
    budget = i.equity * i.risk_fraction * i.regime.size_mult
    quantity, capped = _capped_quantity(i, budget / loss_per_unit)
    if quantity < i.rules.min_qty or quantity <= 0:
        return _skip(i, f"quantity {quantity} below min qty {i.rules.min_qty}{capped}")
    notional = quantity * i.price
    if notional < i.rules.min_notional:
        return _skip(i, f"notional {notional:.2f} below min notional {i.rules.min_notional}{capped}")
    risk_amount = quantity * loss_per_unit
    heat_cap = i.max_heat * i.equity
    if i.open_risk + risk_amount > heat_cap:
        return _skip(i, f"portfolio heat: open risk {i.open_risk:.2f} + {risk_amount:.2f} "
                        f"> {i.max_heat:.1%} of equity ({heat_cap:.2f})")
    margin = notional / i.leverage + notional * i.taker_fee * 2
    if i.free_margin < margin:
        return _skip(i, f"insufficient margin: free {i.free_margin:.2f} < estimated "
                        f"{margin:.2f} (would be rejected with -2019)")
    return EntryPlan(quantity, stop_trigger, take_profit_trigger, risk_amount, notional, margin,
                     abs(i.price - stop_trigger) / i.price, abs(take_profit_trigger - i.price) / i.price)


def _precheck(i: SizingInput) -> str:
    if not i.regime.allow_entry:
        return f"regime: {i.regime.reason}"
    if i.signal.side is not i.side:
        return f"signal side {i.signal.side} does not match entry side {i.side}"
    if i.price <= 0 or i.equity <= 0 or i.risk_fraction <= 0 or i.leverage < 1:
        return (f"nothing to size: price {i.price}, equity {i.equity}, "
                f"risk fraction {i.risk_fraction}, leverage {i.leverage}")
    if i.free_margin < i.min_free_margin:
        return f"insufficient margin: free {i.free_margin:.2f} < {i.min_free_margin} USDT"
    return ""


def _stop_price(i: SizingInput, sl_pct: Decimal) -> Decimal | None:
    """The stop rounded away from the entry, or toward it if away breaks the upper clamp."""
    raw = i.price * (1 - i.side.sign * sl_pct)
    for away in (True, False):
        up = (i.side is Side.SELL) == away
        stop = i.rules.round_price(raw, up=up)
        distance = (i.price - stop) * i.side.sign / i.price     # > 0 on the losing side
        if stop > 0 and i.sl_low <= distance <= i.sl_high:
            return stop
    return None


def _capped_quantity(i: SizingInput, wanted: Decimal) -> tuple[Decimal, str]:
    """Quantity after the per-symbol notional cap and max qty, rounded down to the step."""
    cap_notional = i.max_position_pct * i.equity * i.leverage
    note = ""
    if wanted * i.price > cap_notional:
        wanted = cap_notional / i.price
        note = f" (reduced to the max position cap {cap_notional:.2f})"
    if wanted > i.rules.max_qty:
        wanted = i.rules.max_qty
        note = f" (reduced to max qty {i.rules.max_qty})"
    return i.rules.round_qty(wanted), note


def _skip(i: SizingInput, reason: str) -> Skip:
    logger.debug("entry skipped symbol={} side={} reason={}", i.symbol, i.side, reason)
    return Skip(reason)


class SignalDecision(StrEnum):
    OPEN = "OPEN"
    CLOSE = "CLOSE"
    HOLD = "HOLD"


def decide(position_side: Side | None, signal: Signal | None) -> tuple[SignalDecision, str]:
    """What a signal means for the current position. An opposite signal CLOSEs; it never
    reverses (the next entry, if any, waits for a flat position and the cooldown)."""
    if signal is None:
        return SignalDecision.HOLD, "no signal"
    if position_side is None:
        return SignalDecision.OPEN, f"{signal.side.label} signal, no position"
    if signal.side is position_side:
        return SignalDecision.HOLD, f"{position_side.label} already open"
    return SignalDecision.CLOSE, (f"{signal.side.label} signal against the open "
                                  f"{position_side.label}: close it, no reversal")


def total_open_risk(positions: Iterable[Position]) -> Decimal:
    """Money at risk across open positions (0 for those whose stop is past breakeven)."""
    return sum((position.risk_amount() for position in positions if position.state.open), ZERO)
