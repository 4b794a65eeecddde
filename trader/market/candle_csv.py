"""Reading candle CSV files row by row: the header, the unit of `open_time`, the interval,
and each row parsed into a `Candle` with every check of candle_values.py. The file format
is described in replay.py, which builds the public loaders and the feed on this.

    unit = time_unit(path)
    for number, candle in parse_candles(path, "BTCUSDT", timedelta(minutes=1), unit):
        ...                      # number: the row's line in the file, for error messages

A backtest parses every row it replays, so `parse_candles` reads the rows as lists (not one
dict per row) and makes each price text of the recent rows into a Decimal once: a price
written as before (an open is usually the last close) shares its Decimal.
"""

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from trader.config import INTERVAL_SECONDS
from trader.domain import ZERO, Candle, utc
from trader.market.candle_values import PRICE_COLUMNS, check_candle, parse_number

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class TimeUnit:
    """How a file counts `open_time`. Told apart by size: from 2010 to 2100 a time has
    10 digits in s, 13 in ms, 16 in µs; values of a unit lie in [lowest, highest)."""
    name: str
    per_second: int
    lowest: int
    highest: int

    def to_ms(self, value: int) -> int:
        return value * 1000 // self.per_second


TIME_UNITS = (TimeUnit("s", 1, 0, 10**11), TimeUnit("ms", 1000, 10**11, 10**14),
              TimeUnit("µs", 1_000_000, 10**14, 10**17))
EARLIEST_MS = 1262304000000   # 2010-01-01: Binance did not exist before; older = a wrong unit
LATEST_MS = 4102444800000     # 2100-01-01


def iter_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs, read as they are used (a year of 1m candles is 525,600
    rows: holding them all as dicts next to the candles doubled the peak memory of loading);
    ValueError when the file or its header is unusable. utf-8-sig: a CSV saved by Excel
    starts with a byte order mark, which would otherwise be part of the first column name."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            _check_header(path, reader.fieldnames, required)
            for row in reader:
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read candles ({exc})") from exc


def parse_candles(path: Path, symbol: str, interval: timedelta,
                  unit: TimeUnit) -> Iterator[tuple[int, Candle]]:
    """(line number, candle) for every row, read as they are used; ValueError naming the
    file and line for a bad value (rows out of time order are the caller's to refuse).
    Lines are numbered, blank ones skipped and short rows read as `iter_rows` does."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            _check_header(path, header, CANDLE_COLUMNS)
            assert header is not None   # _check_header refuses a file without one
            yield from _candles_of(path, reader, header, symbol, interval, unit)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read candles ({exc})") from exc


def _check_header(path: Path, header: list[str] | None, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in (header or [])]
    if missing:
        expected = ",".join(required)
        raise ValueError(f"{path}: {_header_problem(header or [], missing)} "
                         f"(expected the header line {expected})")


def _header_problem(header: list[str], missing: list[str]) -> str:
    """What is wrong with a header lacking `missing`, in the words of the usual mistakes: an
    empty file, no header at all (Binance's kline downloads from data.binance.vision before
    2022 have none: add the line), another separator, capitalised names."""
    if not any(name.strip() for name in header):
        return "the file is empty"
    if _is_number(header[0]):
        return ("line 1 holds values, not column names: the file has no header line; "
                "add one at the top")
    if len(header) == 1 and (separator := next((c for c in ";\t|" if c in header[0]), None)):
        return f"line 1: columns separated by {separator!r}, not commas"
    if all(name in (column.strip().lower() for column in header) for name in missing):
        return f"line 1: column names are lower-case: {', '.join(missing)}"
    return f"line 1: missing column(s) {', '.join(missing)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Rows(Protocol):
    """csv.reader's rows and the line it has read up to."""
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...


def _candles_of(path: Path, reader: _Rows, header: list[str], symbol: str,
                interval: timedelta, unit: TimeUnit) -> Iterator[tuple[int, Candle]]:
    # As csv.DictReader reads: a repeated column name means its last column, a short row
    # lacks its last fields (None), blank lines are skipped.
    index = {name: position for position, name in enumerate(header)}
    at_time, at_volume = index["open_time"], index.get("volume")
    at_open, at_high, at_low, at_close = (index[column] for column in PRICE_COLUMNS)
    width = len(header)
    prices = _Prices(path)
    known = prices.known.get
    open_times = _OpenTimes()
    for fields in reader:
        if not fields:
            continue
        number = reader.line_num
        row: list[str | None] = fields if len(fields) >= width \
            else [*fields, *[None] * (width - len(fields))]   # type: ignore[assignment]
        open_time = open_times.at(open_ms(path, number, row[at_time], unit))
        texts = (row[at_open], row[at_high], row[at_low], row[at_close])
        open_, high, low, close = map(known, texts)    # type: ignore[arg-type]
        if open_ is None or high is None or low is None or close is None:
            open_, high, low, close = prices.parse(number, texts)
        volume_text = row[at_volume] if at_volume is not None else None
        volume = parse_number(path, number, "volume", volume_text) if volume_text else ZERO
        check_candle(path, number, (open_, high, low, close), texts)
        # positional: keywords cost a third more here, for every row of a backtest
        yield number, Candle(symbol, open_time, interval, open_, high, low, close, volume)


class _Prices:
    """The Decimal of each price text of the recent rows (`known`), made once: prices
    repeat (an open is usually the last close, and a market returns to its levels), and a
    dictionary read costs a fraction of making a Decimal from text. Bounded: all are
    forgotten once KEPT texts are known (a file's next rows make them again)."""
    KEPT = 4096

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, Decimal] = {}

    def parse(self, number: int, texts: tuple[str | None, ...]) -> list[Decimal]:
        """The row's four prices (open, high, low, close), read from `known` or parsed;
        ValueError naming the line and the column for one that is not a finite number."""
        known = self.known
        if len(known) >= self.KEPT:
            known.clear()
        values = []
        for column, text in zip(PRICE_COLUMNS, texts, strict=True):
            value = known.get(text) if text is not None else None
            if value is None:
                value = parse_number(self.path, number, column, text)
                known[text] = value     # type: ignore[index]   # parsed: not None
            values.append(value)
        return values


class _OpenTimes:
    """`utc(ms)` of a file's rows, by one addition when a row is as far from the last as
    that one was from its own (nearly always): a datetime from a timestamp costs ten times
    more. Exactly equal: from 2010 to 2100 `utc` is exact to the microsecond."""

    def __init__(self) -> None:
        self.last_ms, self.last = 0, utc(0)
        self.step_ms, self.step = 0, timedelta(0)

    def at(self, ms: int) -> datetime:
        if ms - self.last_ms == self.step_ms:
            moment = self.last + self.step
        else:
            moment = utc(ms)
            self.step_ms, self.step = ms - self.last_ms, moment - self.last
        self.last_ms, self.last = ms, moment
        return moment


def time_unit(path: Path) -> TimeUnit:
    """The unit of the file's open_time, from its first row (ms for an empty file)."""
    for number, row in iter_rows(path, CANDLE_COLUMNS):
        value = _open_time_int(path, number, row["open_time"])
        unit = next((u for u in TIME_UNITS if u.lowest <= value < u.highest), None)
        if unit is None:
            raise ValueError(f"{path}: line {number}: open_time {value} is too large for "
                             "seconds, milliseconds or microseconds since the epoch")
        return unit
    return TIME_UNITS[1]


def open_times_ms(path: Path, unit: TimeUnit, rows: int | None = None) -> Iterator[int]:
    """The open times of the file's first `rows` rows (None: all), in ms."""
    for count, (number, row) in enumerate(iter_rows(path, CANDLE_COLUMNS)):
        if rows is not None and count >= rows:
            return
        yield open_ms(path, number, row["open_time"], unit)


def open_ms(path: Path, number: int, text: str | None, unit: TimeUnit) -> int:
    """open_time in ms; ValueError when it is not in the file's unit or not 2010..2100."""
    value = _open_time_int(path, number, text)
    if not unit.lowest <= value < unit.highest:
        raise ValueError(f"{path}: line {number}: open_time {value} is not in {unit.name} like "
                         "the first row (one unit per file)")
    ms = unit.to_ms(value)
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise ValueError(f"{path}: line {number}: open_time {value} ({unit.name}) is "
                         f"{utc(ms):%Y-%m-%d}, outside 2010..2100: not a time since the epoch "
                         "in s, ms or µs")
    return ms


def _open_time_int(path: Path, number: int, text: str | None) -> int:
    try:
        return int(text)   # type: ignore[arg-type]   # None (a short row) is caught
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: line {number}: open_time {text!r} is not a "
                         "whole number of s, ms or µs since the epoch") from exc


def infer_interval(path: Path, open_times: Iterable[int]) -> timedelta:
    """The most common spacing of the open times (ms), else the file name's (-5m)."""
    deltas = Counter(b - a for a, b in pairwise(open_times) if b > a)
    if deltas:
        return timedelta(milliseconds=deltas.most_common(1)[0][0])
    suffix = path.stem.split("-")[1] if "-" in path.stem else ""
    if suffix in INTERVAL_SECONDS:
        return timedelta(seconds=INTERVAL_SECONDS[suffix])
    raise ValueError(f"{path}: cannot infer the candle interval (fewer than two rows and no "
                     f"interval in the file name)")
