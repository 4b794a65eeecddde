"""How numbers, durations and names read in what the operator sees (replies and alerts).

One rule per concept, used by the Telegram replies (bot/format.py) and by the alert texts the
engine writes (closes, daily summary, guards), so a price, a duration or a breaker reads the
same everywhere:

    price(Decimal("1.190099986090393258157504712"), tick=Decimal("0.0001"))  -> "1.1901"
    quantity(Decimal("0.0100"), step=Decimal("0.001"))                        -> "0.01"
    money(Decimal("-1.5"), signed=True)                                       -> "-1.50"
    duration(timedelta(hours=2, minutes=5))                                   -> "2 h 5 min"
    plural(1, "trade"), plural(2, "position")                                 -> "1 trade", "2 positions"
    breaker_label("crash:XRPUSDT")                                            -> "crash breaker on XRPUSDT"

Pure: no I/O, no clock. Money is in the quote asset (USDT), two decimals.
"""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import cast

CENT = Decimal("0.01")
FALLBACK_DECIMALS = 8          # a price whose tick is unknown: Binance books at most 8 decimals

BREAKER_KINDS = {
    "spread": "spread breaker",
    "funding": "funding-rate breaker",
    "crash": "crash breaker",
    "regime": "volatility breaker",
    "api": "API-failure breaker",
}


# An average price may carry 28 digits: `on_step` divides without loss in this context,
# through its methods (no `localcontext` per call; with the kept quanta below a call is
# ~10,500 instructions instead of ~22,500). Its traps are the default context's, as a
# local copy's were; only its flags change, and nothing reads them.
EXACT = Context(prec=60)
# step -> the quantum of its decimals (0.0100 -> 0.01, 25 -> 1): a few steps, met again and
# again (a symbol's tick and lot step)
_step_quanta: dict[Decimal, Decimal] = {}


# --- numbers ------------------------------------------------------------------------
def on_step(value: Decimal, step: Decimal | None) -> Decimal:
    """`value` rounded half-up to the nearest multiple of `step` (a tick or a lot step),
    with no more decimals than the step has. Without a step: at most 8 decimals."""
    if step is None or step <= 0:
        return value.quantize(Decimal(1).scaleb(-FALLBACK_DECIMALS), rounding=ROUND_HALF_UP)
    quantum = _step_quanta.get(step)
    if quantum is None:
        # a positive finite step: its exponent is an int (not NaN's "n" or "F")
        exponent = min(cast(int, step.normalize().as_tuple().exponent), 0)
        quantum = _step_quanta[step] = Decimal(1).scaleb(exponent)
    steps = EXACT.divide(value, step).to_integral_value(rounding=ROUND_HALF_UP)
    return EXACT.quantize(EXACT.multiply(steps, step), quantum)


def number(value: Decimal) -> str:
    """A decimal with thousands separators and no trailing zeros: 43000.0 -> "43,000"."""
    normal = value.normalize()
    if normal == normal.to_integral():
        normal = normal.quantize(Decimal(1))
    return f"{normal:,f}"


def price(value: Decimal, tick: Decimal | None = None) -> str:
    """A price rounded to the symbol's tick (an average fill price has more decimals)."""
    return number(on_step(value, tick))


def price_like(value: Decimal, reference: Decimal) -> str:
    """A price shown with the decimals of `reference`, a price already on the tick grid
    (a stop's trigger): for texts written where the symbol's tick is not at hand."""
    exponent = reference.as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        # `on_step` onto the power of ten 1E<exponent> is the half-up quantize to that
        # exponent (`quantize` takes it from `reference`): the same digits, without a new
        # tick to hash for `_step_quanta` and the divide-round-multiply (a FILL alert a trade)
        return number(value.quantize(reference, ROUND_HALF_UP, EXACT))
    return price(value, None)


def quantity(value: Decimal, step: Decimal | None = None) -> str:
    """A quantity rounded to the symbol's lot step."""
    return number(on_step(value, step))


def money(value: Decimal, signed: bool = False) -> str:
    """USDT with two decimals and thousands separators; `signed` always shows + or -."""
    quantized = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if signed and quantized == 0:
        quantized = abs(quantized)      # "+0.00", never "-0.00"
    return f"{quantized:+,}" if signed else f"{quantized:,}"


def percent(fraction: Decimal | float, signed: bool = True, places: int = 2) -> str:
    """A fraction as a percentage: 0.0049 -> "+0.49%"."""
    value = Decimal(str(fraction)) * 100
    quantized = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if quantized == 0:
        quantized = abs(quantized)
    return f"{quantized:+}%" if signed else f"{quantized}%"


# --- words --------------------------------------------------------------------------
def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 trade", "0 trades", "2 positions"; `many` for irregular plurals."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def duration(span: timedelta) -> str:
    """A span in words, to the minute: "45 s", "30 min", "2 h 5 min", "3 d 4 h"."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes = seconds // 60
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def breaker_label(name: str) -> str:
    """A breaker's name (`<kind>:<SYMBOL>` or `<kind>`, trader/guard_state.py) as words."""
    kind, _, symbol = name.partition(":")
    label = BREAKER_KINDS.get(kind, f"{kind} breaker")
    return f"{label} on {symbol}" if symbol else f"{label} (all symbols)"
