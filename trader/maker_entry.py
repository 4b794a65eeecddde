"""Maker-first entries, the pure rules: where to quote, and what to do with a working quote.

With TRADEBOT_ENTRY_MODE=maker an entry is a post-only limit order (Binance timeInForce
GTX: "Good Till Crossing (Post Only)", https://developers.binance.com/docs/derivatives/
usds-margined-futures/trade/rest-api/New-Order) at the touch: the best bid for a long, the
best ask for a short. It pays the maker fee (Binance's default 0.02 %) instead of the taker
fee (0.05 %). On every tick while it works, `decide` looks at what is known and says one of:

    Hold              leave things as they are (the quote is at the touch, a quote's answer
                      is not known yet, no book, or the re-quotes are used up)
    Quote(p, q)       place a quote for the rest `q` at the touch `p`: the first, or a
                      re-quote after the touch moved away from ours (cancelled and verified
                      first), after a refusal (-5022: it would have taken liquidity) or after
                      the quote ended without filling everything
    FallBack(q)       the time is up: the rest `q` at market (TRADEBOT_MAKER_FALLBACK=market)
    GiveUp            the time is up (TRADEBOT_MAKER_FALLBACK=cancel), the position is
                      closing, entries on its symbol are held (the sleep of a /shutdown, a
                      /pause, a tripped breaker, a failed save, a cooldown, stale candles:
                      whatever refuses a new entry there), or its exit rules began (a first
                      profit taken, the stop moved): cancel the rest; the position keeps
                      what filled. Once decided it stays decided (`QuoteState.giving_up`)
                      until the quote is known ended, whatever holds by then
    Complete          everything planned has filled, or what is left cannot be placed

"Moved away": for a long the best bid rose above our price (we are no longer first in
line); for a short the best ask fell below it. A touch that moves towards us is left alone:
the market is coming to our price. At most `requotes` re-quotes follow the first quote, all
within `timeout` of the start of the entry; then the fallback. A quote whose answer was
lost is never acted on until the exchange has told what became of it (one intent per
client id, never resent).

Chasing the price never outgrows the plan (`EntryRisk`): the stop stays where it was
planned whatever the fill price, so every quote and the market rest is sized to what is
left of the plan's risk budget at its own price (the budget less what the filled part
loses at the stop, by the planner's rule: trader/risk.py), never more than the planned
rest, and never sent at a price whose stop distance is outside the planner's clamp
(0.4-2 %; for a quote, the near edge is the stop itself: `EntryRisk.outside_clamp`).
A re-quote past that limit waits (the price may come back: the live quote, if
any, stays); the market rest past it, or too small to place once sized, is given up and
the position keeps what filled. The market rest is priced at the mark, as the planner
prices a MARKET entry: with no drift it buys the planned rest, as a market entry would.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from trader.display import number
from trader.domain import ZERO, BookTicker, Side
from trader.risk import SL_HIGH, SL_LOW, TAKER_FEE
from trader.symbol_rules import SymbolRules


class EntryMode(StrEnum):
    MARKET = "market"       # a MARKET entry: fills at once, taker fee
    MAKER = "maker"         # post-only quotes at the touch, then the fallback


class MakerFallback(StrEnum):
    MARKET = "market"       # the rest at market when the time is up
    CANCEL = "cancel"       # give up the rest: the position keeps what filled


@dataclass(frozen=True, slots=True)
class MakerPolicy:
    """TRADEBOT_MAKER_REQUOTES, TRADEBOT_MAKER_TIMEOUT_SECONDS, TRADEBOT_MAKER_FALLBACK."""
    requotes: int = 3
    timeout: timedelta = timedelta(seconds=30)
    fallback: MakerFallback = MakerFallback.MARKET


@dataclass(frozen=True, slots=True)
class EntryRisk:
    """What an entry may still risk: its stop, the plan's risk budget and what the filled
    part loses at the stop, each as the planner counts it (trader/risk.py `plan_entry`: the
    price distance plus the taker fee at both ends)."""
    stop: Decimal
    budget: Decimal
    at_risk: Decimal = ZERO
    fee: Decimal = TAKER_FEE

    def loss_per_unit(self, side: Side, price: Decimal) -> Decimal:
        """What one unit bought (sold) at `price` loses at the stop, fees included."""
        return max((price - self.stop) * side.sign, ZERO) + self.fee * (price + self.stop)

    def filled(self, side: Side, quantity: Decimal, notional: Decimal) -> "EntryRisk":
        """This budget with `quantity` filled for `notional` in all counted as at risk."""
        at_risk = max((notional - quantity * self.stop) * side.sign, ZERO) + \
            self.fee * (notional + quantity * self.stop)
        return EntryRisk(self.stop, self.budget, at_risk, self.fee)

    def outside_clamp(self, side: Side, price: Decimal, market: bool) -> str:
        """Why buying (selling) at `price` would put the stop outside the planner's clamp;
        "" when it is inside. A quote's nearer edge is the stop itself: the quotes rest at
        the touch, below the plan's price for a buy (the plan is made at the mark), so a
        plan at the clamp's 0.4 % has its very first quote nearer; buying cheaper than
        planned only lowers the risk. The market rest is priced where the plan was, at the
        mark: the whole clamp applies."""
        distance = (price - self.stop) * side.sign / price
        low = SL_LOW if market else ZERO
        if low <= distance <= SL_HIGH and distance > 0:
            return ""
        return (f"at {number(price)} the stop {number(self.stop)} would be {distance:.2%} "
                f"away (the planner keeps it within {SL_LOW:.1%}-{SL_HIGH:.0%})")

    def affordable(self, side: Side, price: Decimal, rest: Decimal,
                   rules: SymbolRules) -> Decimal:
        """The most of `rest` that buying (selling) at `price` keeps within the budget,
        down to the step size."""
        left = self.budget - self.at_risk
        if left <= 0:
            return ZERO
        return min(rest, rules.round_qty(left / self.loss_per_unit(side, price)))


@dataclass(frozen=True, slots=True)
class QuoteState:
    """What is known of one maker entry now. Quantities are unsigned, in the base asset."""
    side: Side
    planned: Decimal              # what the entry asked for
    filled: Decimal               # filled so far, over every quote (and a market rest)
    quote_price: Decimal | None   # the live quote's price; None when no quote is live
    unknown: bool                 # a quote was sent and its answer lost: not known yet
    quotes_sent: int              # quotes sent so far, the first one included
    elapsed: timedelta            # since the entry began
    risk: EntryRisk               # the plan's budget every order is sized to
    mark: Decimal | None          # where the market rest is priced (the mark); None: unknown
    closing: bool = False         # the position is being closed: no more buying into it
    # Why entries on its symbol are held ("" when nothing holds them): the sleep of a
    # /shutdown, a /pause, a breaker covering it, a failed save, ... (trader/guards.py
    # `entries_held`: whatever refuses a new entry). No more of this one either.
    held: str = ""
    # Its exit rules began (a first profit taken, the stop moved to breakeven or trailing):
    # more bought now would sit on a stop planned for the part that profited, not for it
    managed: bool = False
    # Why it is being given up already ("" when it is not): a give-up decided on an earlier
    # tick whose quote is not known ended yet (its cancel unanswered or read back live). It
    # stays given up, whatever holds now (`Position.giving_up`).
    giving_up: str = ""

    @property
    def requotes_used(self) -> int:
        return max(self.quotes_sent - 1, 0)


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str


@dataclass(frozen=True, slots=True)
class Quote:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class FallBack:
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str
    chase: bool = False     # given up so as not to outgrow the plan (`fall_back`): told


@dataclass(frozen=True, slots=True)
class Complete:
    reason: str


MakerDecision = Hold | Quote | FallBack | GiveUp | Complete


def touch_price(side: Side, book: BookTicker | None, rules: SymbolRules) -> Decimal | None:
    """Where a post-only quote joins the book: the best bid for a buy, the best ask for a
    sell, on the tick grid (rounded away from the market: a buy down, a sell up). None
    without a sane book (no price, or bid at or above ask)."""
    if book is None or book.bid <= 0 or book.ask <= book.bid:
        return None
    if side is Side.BUY:
        return rules.round_price(book.bid, up=False)
    return rules.round_price(book.ask, up=True)


def moved_away(side: Side, quote_price: Decimal, touch: Decimal) -> bool:
    """The touch left our price behind: a higher best bid for a buy, a lower ask for a sell."""
    return touch > quote_price if side is Side.BUY else touch < quote_price


def rest_of(state: QuoteState, rules: SymbolRules) -> Decimal:
    """What is still to buy (sell), down to the step size."""
    return rules.round_qty(max(state.planned - state.filled, ZERO))


def placeable(quantity: Decimal, price: Decimal | None, rules: SymbolRules) -> bool:
    """Whether an order for `quantity` passes LOT_SIZE and MIN_NOTIONAL (at `price`)."""
    if quantity <= 0 or quantity < rules.min_qty:
        return False
    return price is None or quantity * price >= rules.min_notional


def decide(state: QuoteState, touch: Decimal | None, rules: SymbolRules,
           policy: MakerPolicy) -> MakerDecision:
    """The next step of one maker entry (see the module docstring). `touch` comes from
    `touch_price`; `rules` are the symbol's filters."""
    rest = rest_of(state, rules)
    if not placeable(rest, touch or state.quote_price, rules):
        return Complete("everything planned has filled" if rest <= 0
                        else f"the rest {rest} is below the symbol's minimum")
    if state.unknown:
        return Hold("a quote's answer was lost: waiting until the exchange tells")
    if state.giving_up:
        return GiveUp(state.giving_up)
    if state.closing:
        return GiveUp("the position is being closed")
    if state.held:
        return GiveUp(f"{state.held}: no new entries")
    if state.managed:
        return GiveUp("the position took its first profit (its stop moved): no more "
                      "buying into it")
    if state.elapsed >= policy.timeout:
        if policy.fallback is MakerFallback.MARKET:
            return fall_back(state, rest, rules)
        return GiveUp(f"not filled within {policy.timeout.total_seconds():g} s")
    if touch is None:
        return Hold("no book to quote at")
    if state.quote_price is not None and not moved_away(state.side, state.quote_price, touch):
        return Hold("the quote is at the touch")
    if state.quotes_sent > 0 and state.requotes_used >= policy.requotes:
        return Hold(f"{policy.requotes} re-quotes used: waiting for the timeout")
    quantity, why_not = sized(state, touch, rest, rules)
    if why_not:
        return Hold(f"no re-quote: {why_not}")     # the price may come back in time
    return Quote(touch, quantity)


def fall_back(state: QuoteState, rest: Decimal, rules: SymbolRules) -> FallBack | GiveUp:
    """The time is up: the rest at market, sized at the mark; given up when that would
    break the plan's budget or clamp."""
    if state.mark is None:
        return GiveUp(f"the rest {number(rest)} was given up: no mark to size it at",
                      chase=True)
    quantity, why_not = sized(state, state.mark, rest, rules, market=True)
    if why_not:
        return GiveUp(f"the rest {number(rest)} was given up: {why_not}", chase=True)
    return FallBack(quantity)


def sized(state: QuoteState, price: Decimal, rest: Decimal, rules: SymbolRules,
          market: bool = False) -> tuple[Decimal, str]:
    """What of `rest` an order at `price` (a quote; `market`: the market rest) may take
    within the entry's risk (`EntryRisk`), or why it may take nothing ("" when it may)."""
    risk = state.risk
    why_not = risk.outside_clamp(state.side, price, market)
    if why_not:
        return ZERO, why_not
    quantity = risk.affordable(state.side, price, rest, rules)
    if not placeable(quantity, price, rules):
        return ZERO, (f"at {number(price)} the plan's risk budget {risk.budget:.2f} leaves "
                      f"{number(quantity)}, below the symbol's minimum")
    return quantity, ""
