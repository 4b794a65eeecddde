"""A symbol's exchange rules: its filters (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
MIN_NOTIONAL) and status,
rounding a quantity or price onto its grid, the prices it refuses, and how a change of them
reads.

Pure values (no I/O): the Binance adapter builds them from exchangeInfo
(trader/exchange/binance_codec.py); sizing, protection and the exit rules round with them.
"""

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from trader.display import number
from trader.domain import ZERO, OrderRequest, OrderType, Side


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Exchange filters for one symbol (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL) and its status.

    `status` is exchangeInfo's symbol status (TRADING, SETTLING, PENDING_TRADING, CLOSE,
    DELIVERING ...: https://developers.binance.com/docs/derivatives/usds-margined-futures/
    market-data/rest-api/Exchange-Information); only TRADING takes new entries.

    `min_price` / `max_price`: PRICE_FILTER's bounds of a price or stopPrice, 0 for none
    ("disabled on 0": .../usds-margined-futures/common-definition, Filters). PERCENT_PRICE
    is not kept: it bounds a limit order's `price` around the mark, and every leg the agent
    places is a STOP_MARKET / TAKE_PROFIT_MARKET with a trigger and no price.

    `market_min_qty` / `market_max_qty` / `market_step_size`: MARKET_LOT_SIZE, "the
    quantity rules for MARKET orders" (common-definition, Filters), 0 where exchangeInfo
    gives none (LOT_SIZE's then). Binance's documented exchangeInfo example has LOT_SIZE
    maxQty 10000000 but MARKET_LOT_SIZE maxQty 590119: a MARKET order above it is refused
    (-4005). Entries are sized within it (trader/risk.py), a market close above it is sent
    in parts (`market_parts`); legs (STOP_MARKET / TAKE_PROFIT_MARKET) keep LOT_SIZE.
    """
    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal = Decimal("1000000000")
    status: str = "TRADING"
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = ZERO
    market_step_size: Decimal = ZERO

    @property
    def tradable(self) -> bool:
        return self.status == "TRADING"

    @property
    def largest_market_qty(self) -> Decimal:
        """The largest MARKET order Binance takes: MARKET_LOT_SIZE's maxQty (within
        LOT_SIZE's, should it ever be larger), on the market step."""
        largest = min(self.market_max_qty, self.max_qty) if self.market_max_qty > 0 \
            else self.max_qty
        step = self.market_step_size or self.step_size
        return (largest / step).to_integral_value(rounding=ROUND_DOWN) * step

    def market_parts(self, quantity: Decimal) -> list[Decimal]:
        """A market close of `quantity` as the MARKET orders Binance takes: parts of at most
        `largest_market_qty`, the last one the rest (one part, `quantity` itself, when it
        is within). A rest below MARKET_LOT_SIZE's minQty takes what it lacks from the part
        before it, so every part is an order Binance accepts.

            >>> rules.market_parts(Decimal("0.7"))      # market maxQty 0.3
            [Decimal('0.3'), Decimal('0.3'), Decimal('0.1')]
        """
        largest = self.largest_market_qty
        if quantity <= largest or largest <= 0:
            return [quantity]
        parts = []
        left = quantity
        while left > largest:
            parts.append(largest)
            left -= largest
        least = self.market_min_qty or self.min_qty
        if left < least:
            parts[-1] -= least - left
            left = least
        return [*parts, left]

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a quantity down to the step size (never more than asked)."""
        return (qty / self.step_size).to_integral_value(rounding=ROUND_DOWN) * self.step_size

    def round_price(self, price: Decimal, *, up: bool) -> Decimal:
        """Round a price to the tick size; `up` picks the side (use the safe side for stops)."""
        rounding = ROUND_CEILING if up else ROUND_FLOOR
        return (price / self.tick_size).to_integral_value(rounding=rounding) * self.tick_size

    def price_refusal(self, price: Decimal) -> str:
        """Why PRICE_FILTER refuses `price` as a price or trigger ("" when it passes): past
        its max (Binance: -4002 / -4007 for a stopPrice) or below its min (-4013)."""
        if self.max_price > 0 and price > self.max_price:
            return (f"{number(price)} is above {self.symbol}'s highest allowed price "
                    f"{number(self.max_price)}")
        if self.min_price > 0 and price < self.min_price:
            return (f"{number(price)} is below {self.symbol}'s lowest allowed price "
                    f"{number(self.min_price)}")
        return ""

    def nearest_allowed_price(self, price: Decimal) -> Decimal | None:
        """The PRICE_FILTER bound `price` is past (minPrice below it, maxPrice above it), the
        nearest price the filter allows; None when it allows `price` (or has no bound)."""
        if self.max_price > 0 and price > self.max_price:
            return self.max_price
        if self.min_price > 0 and price < self.min_price:
            return self.min_price
        return None

    def at_price_bound(self, price: Decimal) -> bool:
        """`price` is PRICE_FILTER's minPrice or maxPrice (a level no further out is allowed)."""
        return price > 0 and price in (self.min_price, self.max_price)

    def onto_grid(self, request: "OrderRequest") -> "OrderRequest":
        """An order planned under other rules (the tick or step changed since), re-rounded
        onto this grid: a price or trigger moves away from the market (a sell stop down, a
        buy stop up; a sell take-profit or limit up, a buy one down), so it can neither
        trigger at once nor pay more; a quantity goes down to the step (never more)."""
        up = request.side is Side.BUY if request.type is OrderType.STOP_MARKET \
            else request.side is Side.SELL
        changes: dict[str, Any] = {"quantity": self.round_qty(request.quantity)}
        if request.price is not None:
            changes["price"] = self.round_price(request.price, up=up)
        if request.trigger_price is not None:
            changes["trigger_price"] = self.round_price(request.trigger_price, up=up)
        return replace(request, **changes)


_RULE_WORDS = {"tick_size": "tick size", "step_size": "step size", "min_qty": "min quantity",
               "min_notional": "min notional", "max_qty": "max quantity", "status": "status",
               "min_price": "min price", "max_price": "max price",
               "market_min_qty": "market min quantity", "market_max_qty": "market max quantity",
               "market_step_size": "market step size"}


def describe_rules_change(old: SymbolRules, new: SymbolRules) -> str:
    """'tick size 0.1 → 0.5, status TRADING → SETTLING' (the fields that differ; numbers
    without the exchange's padding, as display.number writes them)."""
    def shown(value: object) -> str:
        return number(value) if isinstance(value, Decimal) else str(value)
    changed = [f"{words} {shown(getattr(old, name))} → {shown(getattr(new, name))}"
               for name, words in _RULE_WORDS.items() if getattr(old, name) != getattr(new, name)]
    return ", ".join(changed) or "unchanged"
