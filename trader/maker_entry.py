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
                      closing or the agent sleeps (/shutdown): cancel the rest; the
                      position keeps what filled
    Complete          everything planned has filled, or what is left cannot be placed

"Moved away": for a long the best bid rose above our price (we are no longer first in
line); for a short the best ask fell below it. A touch that moves towards us is left alone:
the market is coming to our price. At most `requotes` re-quotes follow the first quote, all
within `timeout` of the start of the entry; then the fallback. A quote whose answer was
lost is never acted on until the exchange has told what became of it (one intent per
client id, never resent).
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from trader.domain import ZERO, BookTicker, Side
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
class QuoteState:
    """What is known of one maker entry now. Quantities are unsigned, in the base asset."""
    side: Side
    planned: Decimal              # what the entry asked for
    filled: Decimal               # filled so far, over every quote (and a market rest)
    quote_price: Decimal | None   # the live quote's price; None when no quote is live
    unknown: bool                 # a quote was sent and its answer lost: not known yet
    quotes_sent: int              # quotes sent so far, the first one included
    elapsed: timedelta            # since the entry began
    closing: bool = False         # the position is being closed: no more buying into it
    asleep: bool = False          # the operator's /shutdown: no new entries, this one neither

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
    if state.closing:
        return GiveUp("the position is being closed")
    if state.asleep:
        return GiveUp("the agent sleeps (/shutdown): no new entries")
    if state.elapsed >= policy.timeout:
        if policy.fallback is MakerFallback.MARKET:
            return FallBack(rest)
        return GiveUp(f"not filled within {policy.timeout.total_seconds():g} s")
    if touch is None:
        return Hold("no book to quote at")
    if state.quote_price is not None and not moved_away(state.side, state.quote_price, touch):
        return Hold("the quote is at the touch")
    if state.quotes_sent > 0 and state.requotes_used >= policy.requotes:
        return Hold(f"{policy.requotes} re-quotes used: waiting for the timeout")
    return Quote(touch, rest)
