"""Pure helpers of the matching simulator: the intra-candle price path, trigger geometry,
book and taker prices, funding times.

Intra-candle path: open -> the extreme nearer to the open -> the other extreme -> close.
If |open - high| <= |open - low| the path visits the high first, otherwise the low. The four
points are stamped open_time, open_time + interval/3, open_time + 2 x interval/3, close_time.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trader.domain import ZERO, BookTicker, Candle, OrderType, Side
from trader.fast_init import fast_init

# Enum members read once, here: a read of `Side.BUY` goes through EnumType.__getattr__
# (Python 3.11: ~850 instructions), a module global is a dict read. The very same objects.
_STOP_MARKET = OrderType.STOP_MARKET
_BUY = Side.BUY

FUNDING_PERIOD = timedelta(hours=8)   # 00:00, 08:00, 16:00 UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Decimal operands for the arithmetic below: an int operand is converted to exactly these
# values at each use (the same results, digit for digit), so they are made once here
ONE = Decimal(1)
TWO = Decimal(2)


@fast_init          # four per candle that moves a resting order
@dataclass(frozen=True, slots=True)
class PathPoint:
    time: datetime
    price: Decimal


def candle_path(candle: Candle) -> list[PathPoint]:
    """The price path the simulator walks inside one candle (see the module docstring)."""
    high_first = abs(candle.open - candle.high) <= abs(candle.open - candle.low)
    first, second = (candle.high, candle.low) if high_first else (candle.low, candle.high)
    third = candle.interval / 3
    return [
        PathPoint(candle.open_time, candle.open),
        PathPoint(candle.open_time + third, first),
        PathPoint(candle.open_time + 2 * third, second),
        PathPoint(candle.close_time, candle.close),
    ]


def rising_trigger(order_type: OrderType, side: Side) -> bool:
    """True when the order fires as the price rises to its level (BUY stop, SELL limit/TP)."""
    return (order_type is _STOP_MARKET) == (side is _BUY)


def crossed(order_type: OrderType, side: Side, level: Decimal, price: Decimal) -> bool:
    """Whether `price` is at or beyond the order's trigger/limit level in its direction.

    A BUY stop triggers at or above its stop, a SELL stop at or below; take-profits and
    limits the other way round (a BUY take-profit/limit at or below, a SELL at or above).
    """
    return price >= level if rising_trigger(order_type, side) else price <= level


def touched(rising: bool, level: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether a move spanning [low, high] reaches `level` from the trigger's side."""
    return high >= level if rising else low <= level


def traded_through(rising: bool, level: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether a move spanning [low, high] goes beyond `level` (a resting limit's queue
    position is unknown: only a price through it proves it filled)."""
    return high > level if rising else low < level


def distance_along(start: Decimal, level: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """How far from `start` the move meets `level` (0 when it was already beyond it)."""
    return abs(level - start) if low <= level <= high else Decimal(0)


def funding_period(moment: datetime) -> tuple[datetime, datetime]:
    """The funding moments (previous, next) with previous <= moment < next."""
    previous = EPOCH + (moment - EPOCH) // FUNDING_PERIOD * FUNDING_PERIOD
    return previous, previous + FUNDING_PERIOD


def funding_times(after: datetime, until: datetime) -> list[datetime]:
    """Funding moments (00/08/16 UTC) with after < t <= until."""
    periods = (after - EPOCH) // FUNDING_PERIOD
    moment = EPOCH + (periods + 1) * FUNDING_PERIOD
    found = []
    while moment <= until:
        found.append(moment)
        moment += FUNDING_PERIOD
    return found


def to_tick(price: Decimal, tick: Decimal, up: bool) -> Decimal:
    # the rounding passed by position, not by keyword: the same argument of the same method
    # (to_integral_value(rounding=None, context=None)), but _decimal parses keywords ~1 us
    # slower (about half of this function's cost)
    return (price / tick).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR) * tick


def book_at(symbol: str, mid: Decimal, spread: Decimal, tick: Decimal) -> BookTicker:
    """Bid and ask `spread` (a fraction of price) apart around `mid`, at least one tick;
    never negative or crossed (a bid rounded down to 0 below one tick is one tick)."""
    half = mid * spread / TWO      # TWO, not 2: an int operand is converted to this very value
    # to_tick(mid - half, tick, up=False) and to_tick(mid + half, tick, up=True), inline
    bid = ((mid - half) / tick).to_integral_value(ROUND_FLOOR) * tick
    if tick > bid:                 # max(bid, tick): max keeps the first of equal values
        bid = tick
    ask = ((mid + half) / tick).to_integral_value(ROUND_CEILING) * tick
    return BookTicker(symbol, bid, ask if ask > bid else bid + tick)


def candle_problem(candle: Candle) -> str | None:
    """Why the simulator refuses a candle ("low=0"), None when it takes it: every price
    must be above 0 (a 0 or negative price would fire every stop and quote a negative
    book)."""
    # against the Decimal ZERO, not the int 0: the same answers (a Decimal compares with an
    # int by its exact value), without converting 0 to a Decimal four times per candle
    if candle.open > ZERO and candle.high > ZERO and candle.low > ZERO and candle.close > ZERO:
        return None   # every candle but a broken one: no list built
    bad = [f"{name}={value}" for name, value in (("open", candle.open), ("high", candle.high),
                                                 ("low", candle.low), ("close", candle.close))
           if value <= 0]
    return " ".join(bad) or None


def taker_price(side: Side, reference: Decimal, cost: Decimal, tick: Decimal) -> Decimal:
    """reference +- cost (half spread + slippage), rounded to the tick against the taker."""
    if side is _BUY:
        return to_tick(reference * (ONE + cost), tick, up=True)
    return to_tick(reference * (ONE - cost), tick, up=False)
