"""One symbol's candles from several files, Binance's monthly or daily downloads
(BTCUSDT-5m-2024-01.csv, BTCUSDT-5m-2024-02.csv, ...), as one series: streamed file after
file as a CandleFile streams one, so memory does not grow with the files' rows.

    series = CandleSeries.joined([CandleFile(path) for path in paths])   # checked here
    for candle in series:
        ...

The files go in the order of their first candles, whatever the order they were given in,
and must hold one interval. Rows that two files share where one ends and the next begins
(a download that repeats the previous one's last candles) are taken once when they are the
same candles; a row that differs, a row only one of the two holds inside their common span,
or a file that adds nothing after the ones before it is refused, naming the file (and the
line). Files apart in time leave a gap, counted and warned about as one inside a file is.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path

from trader.domain import Candle
from trader.market.candle_csv import parse_candles
from trader.market.gaps import GapTally, span_text
from trader.market.replay import CandleFile

CANDLE_FIELDS = ("open", "high", "low", "close", "volume")


class CandleSeries:
    """A symbol's files joined in time order: each part is one of them narrowed to the
    candles it adds (after the rows it shares with the one before) and to the period. Works
    where a CandleFile does: `len`, `[0]` and `[-1]`, `between`, `anchored`, `gaps`, and
    re-iterable (every sweep trial streams it again)."""

    def __init__(self, symbol: str, interval: timedelta, parts: Sequence[CandleFile],
                 adds_from: Sequence[datetime | None], start: datetime | None = None,
                 end: datetime | None = None) -> None:
        self.symbol, self.interval = symbol, interval
        self.parts = list(parts)
        self.adds_from = list(adds_from)    # each part's first candle of its own (None: all)
        self.start, self.end = start, end
        self.gaps = _joined_gaps(self.parts)

    @classmethod
    def joined(cls, files: Sequence[CandleFile]) -> "CandleSeries":
        """The files (opened, so checked each, none empty, of one symbol) as one series;
        ValueError for files of two intervals, or overlapping otherwise than by the same
        candles at their boundary."""
        assert len({file.symbol for file in files}) == 1 and all(files)
        # By first candle; of two beginning together the longer first (the other adds nothing)
        ordered = sorted(files, key=lambda file: (file[0].open_time,
                                                  -file[-1].open_time.timestamp()))
        _check_one_interval(ordered)
        parts = [ordered[0]]
        adds_from: list[datetime | None] = [None]
        last = ordered[0]           # the file holding the series' last candle so far
        for file in ordered[1:]:
            if file[0].open_time > last[-1].open_time:
                parts.append(file)
                adds_from.append(None)
            else:
                own = _first_after_shared(last, file)
                parts.append(file.between(own, None))
                adds_from.append(own)
            last = file
        return cls(ordered[0].symbol, ordered[0].interval, parts, adds_from)

    @property
    def paths(self) -> list[Path]:
        return [part.path for part in self.parts]

    def __iter__(self) -> Iterator[Candle]:
        return chain.from_iterable(self.parts)

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __getitem__(self, index: int) -> Candle:
        """Only the first and the last candle (what a run's span needs)."""
        if self.parts and index in (0, -1):
            return self.parts[index][index]
        raise IndexError(f"CandleSeries gives [0] and [-1] only, not [{index}] (or is empty)")

    def between(self, start: datetime | None, end: datetime | None) -> "CandleSeries":
        """The series narrowed to open times in [start, end] (None: no bound) within its own
        period (`tradebot backtest` narrows the whole series once); a file outside the
        period is not read again."""
        if (start, end) == (self.start, self.end):
            return self
        parts, adds_from = [], []
        for part, own in zip(self.parts, self.adds_from, strict=True):
            if (start is not None and part[-1].open_time < start) or \
                    (end is not None and part[0].open_time > end):
                continue
            narrowed = part.between(_later(start, own), end)
            if narrowed:
                parts.append(narrowed)
                adds_from.append(own)
        return CandleSeries(self.symbol, self.interval, parts, adds_from, start, end)

    def anchored(self) -> "CandleSeries":
        """The same series with each file by its absolute path (CandleFile.anchored)."""
        return CandleSeries(self.symbol, self.interval,
                            [part.anchored() for part in self.parts], self.adds_from,
                            self.start, self.end)


def _check_one_interval(files: Sequence[CandleFile]) -> None:
    first = files[0]
    for file in files[1:]:
        if file.interval != first.interval:
            raise ValueError(f"{first.path} holds {span_text(first.interval)} candles and "
                             f"{file.path} {span_text(file.interval)} candles: a symbol's "
                             "files are joined into one series, of one interval; pass the "
                             "files of one interval")


def _first_after_shared(last: CandleFile, file: CandleFile) -> datetime:
    """The open time of `file`'s first candle after those it shares with `last` (the file
    before it), once every shared row is found the same candle in both; ValueError naming
    file and line otherwise, and for a file that ends inside `last` (it adds nothing)."""
    begins, until = file[0].open_time, last[-1].open_time
    if file[-1].open_time <= until:
        raise ValueError(f"{file.path}: its candles ({_span(file)}) all lie within those of "
                         f"{last.path} ({_span(last)}): it adds nothing; pass one of them")
    theirs = (row for row in _numbered(last) if row[1].open_time >= begins)
    for number, candle in _numbered(file):
        if candle.open_time > until:
            break
        their_number, their_candle = next(theirs)   # `last` has rows up to `until`
        if their_candle.open_time > candle.open_time:
            raise ValueError(_lacking(file, number, candle, last, begins, until))
        if their_candle.open_time < candle.open_time:
            raise ValueError(_lacking(last, their_number, their_candle, file, begins, until))
        if their_candle != candle:
            raise ValueError(_differs(file, number, candle, last, their_number, their_candle))
    left = next(theirs, None)
    if left is not None:    # a row of `last` in the span after `file`'s last one there
        raise ValueError(_lacking(last, left[0], left[1], file, begins, until))
    return candle.open_time     # the first after `until`: file[-1] is after it


def _numbered(file: CandleFile) -> Iterator[tuple[int, Candle]]:
    return parse_candles(file.path, file.symbol, file.interval, file.unit)


def _lacking(holder: CandleFile, number: int, candle: Candle, other: CandleFile,
             begins: datetime, until: datetime) -> str:
    return (f"{holder.path}: line {number}: the candle at {_moment(candle.open_time)} is not in "
            f"{other.path}, though the two files overlap from {_moment(begins)} to "
            f"{_moment(until)}: files that overlap must hold the same rows where they do")


def _differs(file: CandleFile, number: int, candle: Candle, other: CandleFile,
             other_number: int, other_candle: Candle) -> str:
    field = next((name for name in CANDLE_FIELDS
                  if getattr(candle, name) != getattr(other_candle, name)), "close")
    return (f"{file.path}: line {number}: the candle at {_moment(candle.open_time)} differs "
            f"from line {other_number} of {other.path} ({field} {getattr(candle, field)} "
            f"against {getattr(other_candle, field)}): the files overlap there and must hold "
            "the same candles; which download is right?")


def _joined_gaps(parts: Sequence[CandleFile]) -> GapTally:
    """The parts' gaps and those between them (a file ending before the next begins), as
    one GapTally counting candle by candle would have them."""
    tally = GapTally()
    for part in parts:
        if tally.last_open is not None:
            tally.add(part[0])                   # the step from the previous file's last
        tally.count += part.gaps.count
        if part.gaps.largest > tally.largest:
            tally.largest, tally.largest_at = part.gaps.largest, part.gaps.largest_at
        tally.last_open = part[-1].open_time
    return tally


def _later(one: datetime | None, other: datetime | None) -> datetime | None:
    return max(one, other) if one is not None and other is not None else one or other


def _span(file: CandleFile) -> str:
    return f"{_moment(file[0].open_time)} to {_moment(file[-1].open_time)}"


def _moment(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"

