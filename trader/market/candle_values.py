"""The numbers of one candle CSV row, checked: finite, plausible as a price, and no high or
low absurdly far from the open/close. Each ValueError names the file, the line and the field:

    backtest error: XRPUSDT-5m.csv: line 502: close is not a finite number
"""

from decimal import Decimal, InvalidOperation
from pathlib import Path

PRICE_COLUMNS = ("open", "high", "low", "close")
MAX_PRICE = Decimal(10**15)   # far above any exchange price; Decimal maths at tick size breaks above
WICK_LIMIT = 10               # a high/low this many times away from open/close is a bad row


def parse_number(path: Path, number: int, column: str, text: str | None) -> Decimal:
    """A finite Decimal; ValueError naming the line and the column (NaN compares as an
    error and an infinity breaks every sum downstream)."""
    try:
        value = Decimal(text)   # type: ignore[arg-type]   # None (a short row) is caught
    except (TypeError, InvalidOperation) as exc:
        kind = "volume" if column == "volume" else "a price"
        raise ValueError(f"{path}: line {number}: {kind} is not a number: "
                         f"{column} {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"{path}: line {number}: {column} is not a finite number")
    return value


def check_plausible(path: Path, number: int, row: dict[str, str],
                    prices: tuple[Decimal, Decimal, Decimal, Decimal]) -> None:
    """A consistent candle's prices (open, high, low, close) as no market makes them: a
    high 10 x its open/close or a low 1/10 (no real candle of minutes or hours moves so
    far; one such row, a lost decimal point, fills every order on the book and can turn a
    losing backtest into a winning one), or prices beyond MAX_PRICE."""
    open_, high, low, close = prices
    if high > WICK_LIMIT * max(open_, close):
        raise ValueError(f"{path}: line {number}: high {row['high']} is more than "
                         f"{WICK_LIMIT} x the open/close: a bad row?")
    if low * WICK_LIMIT < min(open_, close):
        raise ValueError(f"{path}: line {number}: low {row['low']} is more than "
                         f"{WICK_LIMIT} x below the open/close: a bad row?")
    if high > MAX_PRICE:
        raise ValueError(f"{path}: line {number}: high {row['high']} is larger than "
                         f"{MAX_PRICE:,}: not a price")
