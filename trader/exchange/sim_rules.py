"""Symbol filters and order validation for the simulator, with Binance's own codes and messages.

`DEFAULT_RULES` carries the USD-M filters (PRICE_FILTER tick, LOT_SIZE step/minQty,
MIN_NOTIONAL) of the symbols the agent trades by default; `rules_for` falls back to a
generic rule set for anything else. `validate` raises `ExchangeError` exactly where
Binance would reject the request before it reaches the matching engine.
"""

from decimal import Decimal

from trader.domain import OrderRequest, OrderType, Side
from trader.exchange.base import ExchangeError
from trader.exchange.sim_path import crossed
from trader.symbol_rules import SymbolRules

# Enum members read once, here: a read of `Side.BUY` goes through EnumType.__getattr__
# (Python 3.11: ~850 instructions), a module global is a dict read. The very same objects.
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET

DEFAULT_RULES: dict[str, SymbolRules] = {
    "BTCUSDT": SymbolRules("BTCUSDT", tick_size=Decimal("0.10"), step_size=Decimal("0.001"),
                           min_qty=Decimal("0.001"), min_notional=Decimal("100"),
                           max_qty=Decimal("1000")),
    "ETHUSDT": SymbolRules("ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                           min_qty=Decimal("0.001"), min_notional=Decimal("20"),
                           max_qty=Decimal("10000")),
    "XRPUSDT": SymbolRules("XRPUSDT", tick_size=Decimal("0.0001"), step_size=Decimal("0.1"),
                           min_qty=Decimal("0.1"), min_notional=Decimal("5"),
                           max_qty=Decimal("10000000")),
    "SOLUSDT": SymbolRules("SOLUSDT", tick_size=Decimal("0.0100"), step_size=Decimal("1"),
                           min_qty=Decimal("1"), min_notional=Decimal("5"),
                           max_qty=Decimal("1000000")),
    "BNBUSDT": SymbolRules("BNBUSDT", tick_size=Decimal("0.010"), step_size=Decimal("0.01"),
                           min_qty=Decimal("0.01"), min_notional=Decimal("5"),
                           max_qty=Decimal("100000")),
}

# Typical top-of-book spread as a fraction of price (about one tick on the liquid books).
DEFAULT_SPREAD: dict[str, Decimal] = {
    "BTCUSDT": Decimal("0.00002"),
    "ETHUSDT": Decimal("0.00003"),
    "XRPUSDT": Decimal("0.0001"),
    "SOLUSDT": Decimal("0.00005"),
    "BNBUSDT": Decimal("0.00005"),
}
FALLBACK_SPREAD = Decimal("0.0002")

# Maintenance margin rate of the first notional bracket (used for the liquidation price).
MAINTENANCE_RATE: dict[str, Decimal] = {
    "BTCUSDT": Decimal("0.004"),
    "ETHUSDT": Decimal("0.005"),
}
FALLBACK_MAINTENANCE_RATE = Decimal("0.01")
MAX_LEVERAGE = 125


def rules_for(symbol: str) -> SymbolRules:
    """The symbol's filters: DEFAULT_RULES, or a generic 4-decimal rule set."""
    known = DEFAULT_RULES.get(symbol)
    if known is not None:
        return known
    return SymbolRules(symbol, tick_size=Decimal("0.0001"), step_size=Decimal("0.001"),
                       min_qty=Decimal("0.001"), min_notional=Decimal("5"))


def spread_for(symbol: str, configured: dict[str, Decimal]) -> Decimal:
    if symbol in configured:
        return configured[symbol]
    return DEFAULT_SPREAD.get(symbol, FALLBACK_SPREAD)


def maintenance_rate(symbol: str) -> Decimal:
    return MAINTENANCE_RATE.get(symbol, FALLBACK_MAINTENANCE_RATE)


ZERO = Decimal(0)   # compared with instead of the int 0: the same answers, no conversion


def _multiple_of(value: Decimal, unit: Decimal) -> bool:
    return value % unit == ZERO


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def validate_shape(request: OrderRequest) -> None:
    """Parameter checks Binance does before looking at filters (-1102 / -1106)."""
    if request.type is _LIMIT and request.price is None:
        raise ExchangeError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, "
                                   "or malformed.")
    if request.type.conditional and request.trigger_price is None:
        raise ExchangeError(-1102, "Mandatory parameter 'stopPrice' was not sent, was "
                                   "empty/null, or malformed.")
    if request.close_position and not request.type.conditional:
        raise ExchangeError(-1106, "Parameter 'closePosition' sent when not required.")
    if request.close_position and request.reduce_only:
        raise ExchangeError(-1106, "Parameter 'reduceOnly' sent when not required.")


def validate_filters(request: OrderRequest, rules: SymbolRules, reference_price: Decimal) -> None:
    """PRICE_FILTER, LOT_SIZE and MIN_NOTIONAL, with Binance's codes and messages."""
    for price in (request.price, request.trigger_price):
        if price is not None and (price <= ZERO or not _multiple_of(price, rules.tick_size)):
            raise ExchangeError(-4014, "Price not increased by tick size.")
    _price_bounds(request, rules)
    if request.close_position:
        return  # quantity is ignored: the whole position is closed at trigger time
    quantity = request.quantity
    if quantity <= ZERO:
        raise ExchangeError(-4003, "Quantity less than or equal to zero.")
    step, least, largest = _lot(request, rules)
    if not _multiple_of(quantity, step):
        raise ExchangeError(-1111, "Precision is over the maximum defined for this asset.")
    if quantity < least:
        raise ExchangeError(-1013, "Quantity less than minimum quantity.")
    if quantity > largest:
        # -4005 QTY_GREATER_THAN_MAX_QTY (usds-margined-futures/error-code)
        raise ExchangeError(-4005, "Quantity greater than max quantity.")
    price = request.price or request.trigger_price or reference_price
    if not request.reduce_only and quantity * price < rules.min_notional:
        raise ExchangeError(-4164, f"Order's notional must be no smaller than "
                                   f"{_plain(rules.min_notional)} (unless you choose reduce only).")


def _lot(request: OrderRequest, rules: SymbolRules) -> tuple[Decimal, Decimal, Decimal]:
    """The step, minQty and maxQty an order's quantity is held to: a MARKET order's are
    MARKET_LOT_SIZE's where the symbol has one ("the quantity rules for MARKET orders",
    common-definition, Filters), within LOT_SIZE's maxQty; any other order's LOT_SIZE's."""
    if request.type is not _MARKET:
        return rules.step_size, rules.min_qty, rules.max_qty
    largest = min(rules.market_max_qty, rules.max_qty) if rules.market_max_qty > ZERO \
        else rules.max_qty
    return (rules.market_step_size or rules.step_size, rules.market_min_qty or rules.min_qty,
            largest)


def _price_bounds(request: OrderRequest, rules: SymbolRules) -> None:
    """PRICE_FILTER's minPrice / maxPrice bound a price and a stopPrice alike, 0 disabling
    either (usds-margined-futures/common-definition, Filters). The error-code page names
    -4002 (price) and -4007 (stop price) past the max, -4013 below the min; it names no
    stop-price code below the min, so -4013 serves both."""
    if rules.max_price > ZERO:
        if request.price is not None and request.price > rules.max_price:
            raise ExchangeError(-4002, "Price greater than max price.")
        if request.trigger_price is not None and request.trigger_price > rules.max_price:
            raise ExchangeError(-4007, "Stop price greater than max price.")
    if rules.min_price > ZERO:
        for price in (request.price, request.trigger_price):
            if price is not None and price < rules.min_price:
                raise ExchangeError(-4013, "Price less than min price.")


def would_trigger_now(order_type: OrderType, side: Side, trigger_price: Decimal,
                      last_price: Decimal) -> bool:
    """True when a conditional order's stop sits on the wrong side of the price (-2021)."""
    return crossed(order_type, side, trigger_price, last_price)


def check_leverage(leverage: int) -> None:
    if not 1 <= leverage <= MAX_LEVERAGE:
        raise ExchangeError(-4028, f"Leverage {leverage} is not valid")
