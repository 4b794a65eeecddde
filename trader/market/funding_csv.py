"""Funding rate CSV files, in either of two layouts, and several files of one symbol joined:

    funding_time,funding_rate                                the bundled files' (trader/data)
    calc_time,funding_interval_hours,last_funding_rate       Binance's monthly downloads

Binance publishes each USD-M symbol's settled funding rates by month at
data.binance.vision/data/futures/um/monthly/fundingRate/<SYMBOL>/<SYMBOL>-fundingRate-
<year>-<month>.zip (https://github.com/binance/binance-public-data: the archive's folders;
its README lists no columns for them). The CSV inside starts with the header line
calc_time,funding_interval_hours,last_funding_rate: the fields of the funding history
Binance's site answers with (calcTime in ms, fundingIntervalHours, lastFundingRate). The
schedule keeps a time and a rate: funding_interval_hours is not read.

    schedule = load_funding_files([Path("BTCUSDT-fundingRate-2024-01.csv"), ...])
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trader.domain import utc
from trader.market.csv_columns import first_line, iter_rows

FundingSchedule = list[tuple[datetime, Decimal]]

FUNDING_COLUMNS = ("funding_time", "funding_rate")
BINANCE_FUNDING_COLUMNS = ("calc_time", "last_funding_rate")
EXPECTED = ("the header line funding_time,funding_rate, or Binance's "
            "calc_time,funding_interval_hours,last_funding_rate")


def load_funding(path: Path) -> FundingSchedule:
    """Read a funding CSV (times in ms) into (time, rate) pairs, in time order."""
    return sorted((at, rate) for at, rate, _ in _rows(Path(path)))


def load_funding_files(paths: Iterable[Path]) -> FundingSchedule:
    """One symbol's funding files (Binance's months) as one schedule in time order; a time
    held twice (two files overlap) is taken once when its rates agree, and ValueError names
    both lines when they differ."""
    seen: dict[datetime, tuple[Decimal, Path, int]] = {}
    for path in paths:
        for at, rate, number in _rows(Path(path)):
            before = seen.get(at)
            if before is None:
                seen[at] = (rate, Path(path), number)
            elif before[0] != rate:
                raise ValueError(f"{path}: line {number}: funding rate {rate} at "
                                 f"{at:%Y-%m-%d %H:%M:%S} UTC, but line {before[2]} of "
                                 f"{before[1]} has {before[0]} for that time: which is right?")
    return sorted((at, rate) for at, (rate, _, _) in seen.items())


def _rows(path: Path) -> list[tuple[datetime, Decimal, int]]:
    """(time, rate, line number) of every row, in the file's order."""
    time_column, rate_column = _layout(path)
    rows = []
    for number, row in iter_rows(path, (time_column, rate_column), what="funding rates",
                                 expected=EXPECTED):
        try:
            rows.append((utc(int(row[time_column])), Decimal(row[rate_column]), number))
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise ValueError(f"{path}: line {number}: bad funding row ({exc})") from exc
    return rows


def _layout(path: Path) -> tuple[str, str]:
    """The time and rate columns: Binance's when line 1 names them, else the bundled ones
    (iter_rows then says what is missing)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            names = first_line(handle)[1] or []
    except (OSError, UnicodeDecodeError):
        return FUNDING_COLUMNS       # iter_rows says why the file cannot be read
    if all(column in names for column in BINANCE_FUNDING_COLUMNS):
        return BINANCE_FUNDING_COLUMNS
    return FUNDING_COLUMNS
