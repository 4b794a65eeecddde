"""Reading candle CSV files row by row: the unit of `open_time`, the interval, and each row
parsed into a `Candle` with every check of candle_values.py (the columns, from the header
line or Binance's kline layout: csv_columns.py). The file format is described in replay.py,
which builds the public loaders and the feed on this.

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
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from trader.config import INTERVAL_SECONDS
from trader.domain import ZERO, Candle, utc
from trader.evolve import filler
from trader.market.candle_values import (
    MAX_PRICE,
    PRICE_COLUMNS,
    WICK,
    WICK_LIMIT,
    check_candle,
    parse_number,
)
from trader.market.csv_columns import file_columns, first_line, iter_rows, unreadable

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KLINE_INTERVALS = frozenset(INTERVAL_SECONDS.values())   # seconds
DAY = timedelta(days=1)


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

    @property
    def accepted(self) -> tuple[int, int]:
        """[low, high): the values `open_ms` takes in this unit, 2010..2100 included (to_ms
        only grows with the value, so its bounds are where it crosses EARLIEST_MS and
        LATEST_MS: the least value whose ms reach each)."""
        return (max(self.lowest, _least_reaching(EARLIEST_MS, self.per_second)),
                min(self.highest, _least_reaching(LATEST_MS, self.per_second)))


def _least_reaching(ms: int, per_second: int) -> int:
    """The least value v with v * 1000 // per_second >= ms."""
    return -(-ms * per_second // 1000)


TIME_UNITS = (TimeUnit("s", 1, 0, 10**11), TimeUnit("ms", 1000, 10**11, 10**14),
              TimeUnit("µs", 1_000_000, 10**14, 10**17))
EARLIEST_MS = 1262304000000   # 2010-01-01: Binance did not exist before; older = a wrong unit
LATEST_MS = 4102444800000     # 2100-01-01


def parse_candles(path: Path, symbol: str, interval: timedelta,
                  unit: TimeUnit) -> Iterator[tuple[int, Candle]]:
    """(line number, candle) for every row, read as they are used; ValueError naming the
    file and line for a bad value (rows out of time order are the caller's to refuse).
    Lines are numbered, blank ones skipped and short rows read as `iter_rows` does."""
    return _read(path, symbol, interval, unit, numbered=True)


def stream_candles(path: Path, symbol: str, interval: timedelta, unit: TimeUnit,
                   start: datetime | None = None,
                   end: datetime | None = None) -> Iterator[Candle]:
    """The candles of the file in time order, as a replay reads them: ValueError for a bad
    value (as `parse_candles`) or for a row out of time order (`out_of_order`'s words, once
    the row's values are found good), when the row is reached. Only the candles opening in
    [start, end] (None: no bound): reading stops at the first row past `end`."""
    return _read(path, symbol, interval, unit, numbered=False, start=start, end=end)


def _read(path: Path, symbol: str, interval: timedelta, unit: TimeUnit, *, numbered: bool,
          start: datetime | None = None, end: datetime | None = None) -> Iterator[Any]:
    """`parse_candles` (`numbered`) or `stream_candles`: this one generator reads, checks
    and builds each row, a backtest's every row: no layer of generators or calls per row
    where a row is as they nearly all are; each check that fails calls the function that
    says why (open_ms, _Prices.parse, parse_number, check_candle), so a bad row is refused
    with the words it always was."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first, names = first_line(handle)
            header, has_header = file_columns(path, names, CANDLE_COLUMNS)
            # A file without a header line (Binance's klines before 2022): its line 1 is a row
            lines = handle if has_header else chain((first,), handle)
            number = 1 if has_header else 0
            limit = csv.field_size_limit()
            # As csv.DictReader reads: a repeated column name means its last column, a
            # short row lacks its last fields (None), blank lines are skipped.
            index = {name: position for position, name in enumerate(header)}
            at_time, at_volume = index["open_time"], index.get("volume")
            at_open, at_high, at_low, at_close = (index[column] for column in PRICE_COLUMNS)
            width = len(header)
            prices = _Prices(path)
            known = prices.known.get
            lowest, highest = unit.accepted   # the values open_ms takes, as they are
            per_second = unit.per_second
            # `_OpenTimes`, inline: utc(ms) by one addition when a row is as far from the
            # last as that one was from its own (nearly always; see there)
            last_ms, last, step_ms, step = 0, utc(0), 0, timedelta(0)
            last_close = None
            for line in lines:
                # csv.reader's fields of a line without a quote, nor a field it would
                # find too long: the text between commas, the line's end dropped (with
                # newline="" a line ends at its \r, \n or \r\n; a blank line is no row;
                # a NUL is a character like another). Any other line is read by a
                # csv.reader of its own, which reads on as far as a quoted field spans.
                if '"' in line or len(line) > limit:
                    reader = csv.reader(chain((line,), handle))
                    fields = next(reader, [])
                    number += reader.line_num
                else:
                    number += 1
                    line = line.rstrip("\r\n")
                    fields = line.split(",") if line else []
                if len(fields) < width:
                    if not fields:
                        continue
                    fields = [*fields, *[None] * (width - len(fields))]  # type: ignore[list-item]  # short row: None read as missing below
                text = fields[at_time]
                try:
                    value = int(text)
                except (TypeError, ValueError):     # None: a short row
                    value = 0                       # not accepted: open_ms says why
                ms = value * 1000 // per_second if lowest <= value < highest \
                    else open_ms(path, number, text, unit)
                delta = ms - last_ms
                if delta == step_ms:
                    open_time = last + step
                else:
                    open_time = utc(ms)
                    step_ms, step = delta, open_time - last
                last_ms, last = ms, open_time
                texts = (fields[at_open], fields[at_high], fields[at_low], fields[at_close])
                open_, high, low, close = map(known, texts)
                if open_ is None or high is None or low is None or close is None:
                    open_, high, low, close = prices.parse(number, texts)
                volume_text = fields[at_volume] if at_volume is not None else None
                if volume_text:     # `_number`, inline
                    try:
                        volume = Decimal(volume_text)
                    except InvalidOperation:
                        volume = NAN                # not finite: parse_number says why
                    if not volume.is_finite():
                        parse_number(path, number, "volume", volume_text)   # raises
                    if volume < ZERO:
                        raise ValueError(f"{path}: line {number}: volume {volume_text} is "
                                         "negative: no market trades less than nothing")
                else:
                    volume = ZERO
                # `check_candle`'s tests, cheaper: it is called only when one of them
                # fails, and refuses the row or finds it good. Consistent, and within the
                # wick limit when the low is at least a tenth of the high: then the high is
                # at most 10 x the low <= 10 x the open/close, and the low at least a
                # tenth of the high >= the open/close (check_candle's two tests pass).
                body_low, body_high = (open_, close) if open_ <= close else (close, open_)
                if not (low <= body_low and high >= body_high and low > 0
                        and low * WICK >= high and high <= MAX_PRICE):
                    check_candle(path, number, (open_, high, low, close), texts)
                # An open far from the previous close: no market moves 10 x between two
                # candles; two symbols' rows joined in one file do (XRP 1.1, BTC 70,000).
                # The open is most often the very Decimal of the last close (`known`).
                if open_ is not last_close and last_close is not None and (
                        open_ > last_close * WICK or open_ * WICK < last_close):
                    raise ValueError(price_jump(path, number, texts[0], last_close))
                last_close = close
                if delta <= 0 and not numbered:     # (ms > 0: never the first row)
                    raise ValueError(out_of_order(path, number, open_time, utc(ms - delta)))
                if end is not None and open_time > end:
                    return
                if start is not None and open_time < start:
                    continue
                # `Candle(...)` sets each field through its slot's descriptor (the class is
                # frozen): built by plain slot stores on Candle's filler, then made the Candle
                # it is (trader/evolve.py `filler`): ~2,600 instructions against ~8,000.
                # Every field is set (a field added to Candle and not here is caught by
                # tests/test_candle_csv_rows.py).
                candle: Any = _new(_CandleFiller)
                candle.symbol = symbol
                candle.open_time = open_time
                candle.interval = interval
                candle.open = open_
                candle.high = high
                candle.low = low
                candle.close = close
                candle.volume = volume
                candle.closed = True
                candle.__class__ = Candle
                if numbered:
                    yield number, candle
                else:
                    yield candle
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(unreadable(path, exc)) from exc


_CandleFiller = filler(Candle)
_new = object.__new__
NAN = Decimal("NaN")


class _Prices:
    """The Decimal of each price text of the recent rows (`known`), made once: prices
    repeat (an open is usually the last close, and a market returns to its levels), and a
    dictionary read costs a fraction of making a Decimal from text. Bounded: all are
    forgotten once KEPT texts are known (a file's next rows make them again)."""
    KEPT = 4096

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str | None, Decimal] = {}   # None: a short row's missing field

    def parse(self, number: int, texts: tuple[str | None, ...]) -> list[Decimal]:
        """The row's four prices (open, high, low, close), read from `known` or parsed;
        ValueError naming the line and the column for one that is not a finite number."""
        known = self.known
        if len(known) >= self.KEPT:
            known.clear()
        values = []
        for column, text in zip(PRICE_COLUMNS, texts, strict=True):
            value = known.get(text)     # (None for a short row's None)
            if value is None:
                try:                    # `_number`, inline
                    value = Decimal(text)   # type: ignore[arg-type]   # None is caught
                except (TypeError, InvalidOperation):
                    value = NAN         # not finite: parse_number says why
                if not value.is_finite():
                    parse_number(self.path, number, column, text)   # raises
                known[text] = value
            values.append(value)
        return values


def price_jump(path: Path, number: int, open_text: str | None, close: Decimal) -> str:
    """Why a row whose open is WICK_LIMIT times away from the previous row's close is refused."""
    far = (f"is more than {WICK_LIMIT} x" if Decimal(open_text or 0) > close
           else "is less than a tenth of")
    return (f"{path}: line {number}: open {open_text} {far} the close {close} of line "
            f"{number - 1}: two symbols' rows in one file?")


def out_of_order(path: Path, number: int, open_time: datetime, previous: datetime) -> str:
    """Why the row at line `number` cannot follow the previous row, in the words of the
    usual causes: files joined from two downloads repeat rows, a hand-edited one is unsorted."""
    if open_time == previous:
        return (f"{path}: line {number}: open_time {_moment(open_time)} repeats the previous "
                "row's: a duplicate row? Each candle must be in the file once")
    return (f"{path}: line {number}: open_time {_moment(open_time)} is before the previous "
            f"row's ({_moment(previous)}): sort the rows by open_time, oldest first, each once")


def too_close(path: Path, number: int, open_time: datetime, previous: datetime,
              interval: timedelta, previous_number: int) -> str:
    """Why the row at line `number` overlaps the previous one (at `previous_number`): it
    opens before the previous candle (of the file's `interval`) closed. Rows a candle
    interval apart (a Binance kline interval, both on its grid) are files of two intervals
    joined; otherwise the one of the two off the file's grid (whole multiples of the
    interval since 1970, as Binance's klines open up to a day) is a mistyped time."""
    spacing = open_time - previous
    joined = spacing.total_seconds() in KLINE_INTERVALS and on_grid(previous, spacing) \
        and on_grid(open_time, spacing)
    for line, moment in ((previous_number, previous), (number, open_time)):
        if not joined and not on_grid(moment, interval):
            return (f"{path}: line {line}: open_time {_moment(moment)} is off the "
                    f"{_span(interval)} grid the file's candles open on (its most common "
                    "spacing): a mistyped time? Each candle opens at a whole multiple of "
                    "its interval")
    return (f"{path}: line {number}: open_time {_moment(open_time)} is only "
            f"{_span(open_time - previous)} after the previous row's, less than the "
            f"{_span(interval)} of the file's candles (its most common spacing): files of "
            "two intervals joined? Keep one interval per file")


def on_grid(at: datetime, interval: timedelta) -> bool:
    """`at` is a whole multiple of `interval` since 1970-01-01 UTC (always true past a day:
    weekly and monthly candles open on other grids)."""
    return interval > DAY or (at - EPOCH) % interval == timedelta(0)


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _moment(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at.second else f"{at:%Y-%m-%d %H:%M} UTC"


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
    steps = [b - a for a, b in pairwise(open_times)]
    deltas = Counter(step for step in steps if step > 0)
    if deltas:
        return timedelta(milliseconds=deltas.most_common(1)[0][0])
    suffix = path.stem.split("-")[1] if "-" in path.stem else ""
    if suffix in INTERVAL_SECONDS:
        return timedelta(seconds=INTERVAL_SECONDS[suffix])     # the rows then say what is wrong
    if any(step < 0 for step in steps):
        raise ValueError(f"{path}: the rows go newest first (each opens before the one above "
                         "it): sort them by open_time, oldest first")
    raise ValueError(f"{path}: cannot infer the candle interval (fewer than two rows and no "
                     f"interval in the file name)")
