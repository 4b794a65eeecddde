"""Risk: the equity-linked risk fraction, stop clamps, adaptive reward/risk, position
sizing with portfolio heat, position cap and margin checks, and the open/close decision
for a signal against the current position (never a flip).

Everything is pure: the engine passes equity, free margin, open risk and exchange rules
in, and gets an `EntryPlan` or a `Skip` with a reason it can log and show on /status.

The risk budget of an entry is equity x risk fraction x the regime's size multiplier,
scaled by the signal's confidence when TRADEBOT_CONFIDENCE_SIZING is on (0.5x..1x by
default, `confidence_scale`). Open positions correlated with the entry
(trader/correlation.py) are one bet with it: together they may risk one entry's budget, so
the entry gets what the cluster has left; all open risk stays within the heat cap.

Rounding rules (all on the safe side):
- quantity is rounded DOWN to the step size, so the money at risk never exceeds the
  budget;
- the stop is rounded AWAY from the entry (a long's stop down, a short's up), so the
  stop distance never shrinks below the clamped distance, and the risk is computed from
  the rounded stop. Only if that pushes the distance past the upper clamp (2 %) is it
  rounded toward the entry instead; the final distance is always inside the clamps;
- the take-profit is rounded away from the entry too, so the reward never shrinks.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from loguru import logger

from trader.display import number
from trader.domain import ZERO, Side, Signal
from trader.fast_init import fast_init
from trader.position import Position
from trader.strategy.regime import Regime, RegimeAdjustment
from trader.symbol_rules import SymbolRules

MIN_FREE_MARGIN = Decimal("10")   # USDT; below this Binance answers -2019 soon enough
SL_LOW, SL_HIGH = Decimal("0.004"), Decimal("0.02")   # the stop distance's clamp
TAKER_FEE = Decimal("0.0005")     # what a plan's risk counts at each end (Binance's default)


def risk_fraction(equity: Decimal, peak_equity: Decimal, current: Decimal,
                  base: Decimal = Decimal("0.025"), drawdown_step: Decimal = Decimal("0.05"),
                  reduced: Decimal = Decimal("0.015"), floor: Decimal = Decimal("0.01"),
                  ceiling: Decimal = Decimal("0.03")) -> Decimal:
    """The risk fraction to use now, from persisted (exchange-checked) equity values.

    A drawdown from the peak of `drawdown_step` or more drops to `reduced`; a new equity
    high (equity >= peak) restores `base`; anything in between keeps `current` (so a
    small recovery does not flip the fraction back and forth). Never above `base` (a
    drawdown only ever lowers the risk; a fraction saved under a higher base is cut to
    it), nor above `ceiling`; never below `floor`, or the base when the operator chose a
    lower one (TRADEBOT_RISK_BASE=0.004 risks 0.4 %, not the floor's 1 %).
    """
    reduced, floor = min(reduced, base), min(floor, base)
    if peak_equity <= 0:
        chosen = current
    elif equity >= peak_equity:
        chosen = base
    elif (peak_equity - equity) / peak_equity >= drawdown_step:
        chosen = reduced
    else:
        chosen = current
    return min(max(chosen, floor), base, ceiling)


def peak_after_move(peak_equity: Decimal, moved: Decimal) -> Decimal:
    """The drawdown rule's peak after `moved` came into (+) or left (-) the account with no
    trade (a deposit, a withdrawal, a transfer): shifted by as much, so `risk_fraction`
    measures the drawdown of trading only. Never below 0; a peak not known yet (0) stays:
    the next equity read sets it, the money included.

    >>> peak_after_move(Decimal("10000"), Decimal("1000"))
    Decimal('11000')
    """
    if peak_equity <= 0:
        return peak_equity
    return max(peak_equity + moved, ZERO)


def clamp_stop_pct(sl_pct: Decimal, low: Decimal = SL_LOW,
                   high: Decimal = SL_HIGH) -> Decimal:
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


@fast_init          # one per entry looked at
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
    taker_fee: Decimal = TAKER_FEE
    trending: bool = False
    min_free_margin: Decimal = MIN_FREE_MARGIN
    sl_low: Decimal = SL_LOW
    sl_high: Decimal = SL_HIGH
    cluster_risk: Decimal = ZERO      # open risk of the positions that are one bet with this
    cluster_with: tuple[str, ...] = ()   # ... their symbols (trader/correlation.py)
    confidence_floor: Decimal | None = None   # confidence sizing: None = off


@fast_init          # one per entry
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
    budget, reduced = _risk_budget(i)
    if budget <= 0:
        return _skip(i, reduced)
    quantity, capped = _capped_quantity(i, budget / loss_per_unit)
    capped = capped or (f" ({reduced})" if reduced else "")
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


def confidence_scale(confidence: float, floor: Decimal) -> Decimal:
    """The risk scale for a signal's confidence with confidence sizing on: `floor` at
    confidence 0, 1 at confidence 1, linear between; a confidence outside [0, 1] is clamped
    and one that is not a number counts as 0 (the smallest size)."""
    if not math.isfinite(confidence):
        return floor
    known = min(max(Decimal(str(confidence)), ZERO), Decimal(1))
    return floor + (1 - floor) * known


def _risk_budget(i: SizingInput) -> tuple[Decimal, str]:
    """Money this entry may lose at its stop, and a note when something reduced it: the
    equity-linked fraction x the regime's size, x the confidence scale (when on), capped so
    that the correlated cluster it joins stays within one entry's budget."""
    single = i.equity * i.risk_fraction * i.regime.size_mult
    budget = single
    if i.confidence_floor is not None:
        budget = single * confidence_scale(i.signal.confidence, i.confidence_floor)
    room = single - i.cluster_risk
    if not i.cluster_with or budget <= room:
        return budget, ""
    note = (f"correlated with the open {', '.join(i.cluster_with)}: one bet, already risking "
            f"{i.cluster_risk:.2f} of one entry's {single:.2f}")
    return max(room, ZERO), note


def leg_refusal(quantity: Decimal, trigger_price: Decimal, reduce_only: bool,
                rules: SymbolRules, leverage: int, available: Decimal | None,
                taker_fee: Decimal = Decimal("0.0005")) -> str:
    """Why Binance would refuse a protective order (a leg placed again after one vanished,
    or re-sent), foreseen before it is sent; "" when it should be accepted.

    - LOT_SIZE applies to every order with a quantity: below minQty it is refused
      (-4004 / -1013).
    - A new order costs the margin of the position it could open: initial margin (notional
      / leverage) plus open loss (https://www.binance.com/en/support/faq/
      87fa7ee33b574f7084d42bd2ce2e463b). A reduce-only order opens nothing, so it needs no
      margin, and the minimum notional does not apply to it ("Order's notional must be no
      smaller than 5.0 (unless you choose reduce only)", -4164:
      https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).
      Every leg the agent places is reduce-only (trader/intents.py), so for them nothing
      more is foreseen; a -2019 that comes anyway is retried and alerted like any refusal.
    - A leg that is not reduce-only: -4164 below the minimum notional, -2019 when the
      available balance (None: unknown, not judged) is short of notional / leverage + the
      taker fee at the trigger price.
    """
    if quantity < rules.min_qty:
        return (f"quantity {quantity} is below the minimum {rules.min_qty}: Binance refuses "
                "any order for it (LOT_SIZE, -4004)")
    if reduce_only:
        return ""
    notional = quantity * trigger_price
    if notional < rules.min_notional:
        return (f"notional {notional:.2f} is below the minimum {rules.min_notional} for an "
                "order that is not reduce-only (-4164)")
    needed = notional / max(leverage, 1) + notional * taker_fee
    if available is not None and available < needed:
        return (f"margin: it needs about {needed:.2f} USDT, {available:.2f} available "
                f"(short by {needed - available:.2f}); Binance would refuse it with -2019")
    return ""


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
    """Quantity after the per-symbol notional cap and the largest MARKET order, rounded down
    to the step. The entry is a MARKET order (a maker entry's rest goes to market when its
    time is up), held to MARKET_LOT_SIZE (trader/symbol_rules.py): above its maxQty
    Binance refuses it (-4005), the same order again and again."""
    cap_notional = i.max_position_pct * i.equity * i.leverage
    note = ""
    if wanted * i.price > cap_notional:
        wanted = cap_notional / i.price
        note = (f" (reduced to the max position cap: {cap_notional:.2f} USDT notional = "
                f"TRADEBOT_MAX_POSITION_PCT {i.max_position_pct} x equity {i.equity:.2f} x "
                f"leverage {i.leverage})")
    largest = i.rules.largest_market_qty
    if wanted > largest:
        wanted = largest
        note = (f" (reduced to {number(largest)}, the largest market order Binance takes on "
                f"{i.symbol}: MARKET_LOT_SIZE)" if largest < i.rules.max_qty
                else f" (reduced to max qty {i.rules.max_qty})")
        logger.info("entry capped symbol={} quantity={}{}", i.symbol, largest, note)
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
    """Money at risk across the positions held or entering (an ENTERING one at its planned
    size and stop: it may fill any moment), 0 for those whose stop is past breakeven."""
    return sum((position.risk_amount() for position in positions if position.state.at_stake),
               ZERO)
