"""The numbers of one candle CSV row, checked: finite, plausible as a price, and no high or
low absurdly far from the open/close. Each ValueError names the file, the line and the field:

    backtest error: XRPUSDT-5m.csv: line 502: close is not a finite number
"""

from decimal import Decimal, InvalidOperation
from pathlib import Path

PRICE_COLUMNS = ("open", "high", "low", "close")
MAX_PRICE = Decimal(10**15)   # far above any exchange price; Decimal maths at tick size breaks above
WICK_LIMIT = 10               # a high/low this many times away from open/close is a bad row
WICK = Decimal(WICK_LIMIT)


def parse_number(path: Path, number: int, column: str, text: str | None) -> Decimal:
    """A finite Decimal; ValueError naming the line and the column (NaN compares as an
    error and an infinity breaks every sum downstream)."""
    if text is None:            # csv.DictReader's value for a column the row lacks
        raise ValueError(f"{path}: line {number}: the row ends before its {column} column: "
                         "a short row (a line cut off, or a separator missing)?")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        kind = "volume" if column == "volume" else "a price"
        raise ValueError(f"{path}: line {number}: {kind} is not a number: "
                         f"{column} {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"{path}: line {number}: {column} is not a finite number")
    return value


def check_candle(path: Path, number: int, prices: tuple[Decimal, Decimal, Decimal, Decimal],
                 texts: tuple[str | None, ...]) -> None:
    """A candle's prices (open, high, low, close) as a market makes them, else ValueError.

    Consistent: the low at or below the open and the close, the high at or above, the low
    above 0. Plausible: no high 10 x its open/close nor a low 1/10 (no real candle of
    minutes or hours moves so far; one such row, a lost decimal point, fills every order
    on the book and can turn a losing backtest into a winning one), no price beyond
    MAX_PRICE. `texts` are the four prices as the file wrote them (for the messages)."""
    open_, high, low, close = prices
    body_low, body_high = (open_, close) if open_ <= close else (close, open_)
    if not (low <= body_low and high >= body_high and low > 0):
        raise ValueError(f"{path}: line {number}: inconsistent candle "
                         f"(open={open_} high={high} low={low} close={close})")
    if high > WICK * body_high:
        raise ValueError(f"{path}: line {number}: high {texts[1]} is more than "
                         f"{WICK_LIMIT} x the open/close: a bad row?")
    if low * WICK < body_low:
        raise ValueError(f"{path}: line {number}: low {texts[2]} is more than "
                         f"{WICK_LIMIT} x below the open/close: a bad row?")
    if high > MAX_PRICE:
        raise ValueError(f"{path}: line {number}: high {texts[1]} is larger than "
                         f"{MAX_PRICE:,}: not a price")
