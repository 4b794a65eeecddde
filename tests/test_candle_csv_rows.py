"""The CSV reader's fast paths give what the general code gives, and fall back to it
whenever they must (trader/market/candle_csv.py `_read`): a row's candle is the Candle
`Candle(...)` makes, lines csv.reader must read are its, open times at the edges of a
unit are refused with open_ms's words, a wick the cheap test cannot vouch for goes to
check_candle, and the replay's batches are groupby's of the merged candles."""

import asyncio
import csv
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from itertools import groupby
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.clock import ManualClock
from trader.domain import Candle, utc
from trader.market.candle_csv import TIME_UNITS, open_ms
from trader.market.replay import CandleFile, ReplayFeed, iter_candles, load_candles

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
FIVE_MINUTES = timedelta(minutes=5)
HEADER = "open_time,open,high,low,close,volume"


def write(folder: Path, lines: list[str], end: str = "\n") -> Path:
    path = folder / "XRPUSDT-5m.csv"
    path.write_bytes((HEADER + end + "".join(line + end for line in lines)).encode())
    return path


def every_way(path: Path) -> list[list[Candle]]:
    return [load_candles(path), list(iter_candles(path, interval=FIVE_MINUTES)),
            list(CandleFile(path, interval=FIVE_MINUTES))]


def test_a_rows_candle_is_the_candle_its_constructor_makes(tmp_path: Path) -> None:
    """Every field set (a field added to Candle and not to the reader fails here), the type
    Candle itself, equal and hashed alike, still frozen."""
    path = write(tmp_path, [f"{MS0},1.5,2,1.25,1.75,7", f"{MS0 + 300_000},1.75,2,1.5,1.5,"])
    made = [Candle("XRPUSDT", T0, FIVE_MINUTES, D("1.5"), D(2), D("1.25"), D("1.75"), D(7)),
            Candle("XRPUSDT", T0 + FIVE_MINUTES, FIVE_MINUTES, D("1.75"), D(2), D("1.5"),
                   D("1.5"))]
    for read in every_way(path):
        for candle, expected in zip(read, made, strict=True):
            assert type(candle) is Candle
            for field in dataclasses.fields(Candle):
                assert getattr(candle, field.name) == getattr(expected, field.name), field.name
            assert candle == expected and hash(candle) == hash(expected)
            assert repr(candle) == repr(expected)
            with pytest.raises(dataclasses.FrozenInstanceError):
                candle.close = D(1)     # type: ignore[misc]


@pytest.mark.parametrize("unit", TIME_UNITS, ids=lambda unit: unit.name)
def test_the_open_times_taken_without_open_ms_are_exactly_those_it_takes(unit) -> None:  # type: ignore[no-untyped-def]
    low, high = unit.accepted
    for value in (low - 1, low, low + 1, high - 1, high, high + 1):
        try:
            expected = open_ms(Path("x.csv"), 2, str(value), unit)
        except ValueError:
            expected = None
        taken = value * 1000 // unit.per_second if low <= value < high else None
        assert taken == expected, value


def test_an_open_time_just_outside_the_years_is_refused_with_open_ms_words(
        tmp_path: Path) -> None:
    low, high = TIME_UNITS[1].accepted
    for value in (low - 1, high):
        path = write(tmp_path, [f"{MS0},1,2,1,1,1", f"{value},1,2,1,1,1"])
        for read in (load_candles, lambda p: list(iter_candles(p, interval=FIVE_MINUTES))):
            with pytest.raises(ValueError, match=r"line 3: open_time \d+ \(ms\) is \d{4}-\d\d-\d\d, "
                               "outside 2010..2100"):
                read(path)


def reference(path: Path) -> list[tuple[int, Candle]]:
    """What csv.DictReader reads of a file of good rows, as Candles."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return [(reader.line_num, Candle("XRPUSDT", utc(int(row["open_time"])), FIVE_MINUTES,
                                         D(row["open"]), D(row["high"]), D(row["low"]),
                                         D(row["close"]), D(row["volume"] or 0)))
                for row in reader]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_lines_csv_reader_must_read_are_read_by_it(tmp_path: Path, end: str) -> None:
    """Quoted fields (one spanning two lines), blank lines, spaces kept in a field: the
    candles and their line numbers are csv.DictReader's, whatever ends the lines."""
    lines = [f"{MS0},\"1.5\",2,1.25,1.75,7", "", f"{MS0 + 300_000},1.75,\"2\",1.5,1.5,\"8",
             "\",", f"\"{MS0 + 600_000}\",1.5,2,1,1.5,9", f"{MS0 + 900_000},1.5,2,1,1.5, 3 "]
    path = write(tmp_path, lines, end)
    with path.open(newline="") as handle:   # the quoted volume spans two lines
        assert sum(1 for _ in handle) == 1 + len(lines)
    expected = reference(path)
    assert [candle.volume for _, candle in expected] == [D(7), D(8), D(9), D(3)]
    assert repr(load_candles(path)) == repr([candle for _, candle in expected])
    assert repr(list(iter_candles(path, interval=FIVE_MINUTES))) == \
        repr([candle for _, candle in expected])
    bad = write(tmp_path, [*lines, f"{MS0 + 1_200_000},1.5,2,1,x,1"], end)
    with pytest.raises(ValueError, match=f"line {2 + len(lines)}: a price is not a number"):
        load_candles(bad)


def test_a_nul_in_a_line_is_read_as_csv_reader_reads_it(tmp_path: Path) -> None:
    path = write(tmp_path, [f"{MS0},1,2,1,1,1", f"{MS0 + 300_000},1,2,1,1\0,1"])
    with pytest.raises(ValueError, match=r"line 3: a price is not a number: close '1\\x00'"):
        load_candles(path)


def test_a_field_longer_than_csv_readers_limit_is_its_error(tmp_path: Path) -> None:
    long = "1" + "0" * csv.field_size_limit()
    path = write(tmp_path, [f"{MS0},1,2,1,1,{long}"])
    with pytest.raises(ValueError, match="cannot read candles .*field larger than field limit"):
        load_candles(path)


def test_a_wick_the_cheap_test_cannot_vouch_for_is_still_a_candle(tmp_path: Path) -> None:
    """A low under a tenth of the high is no verdict: check_candle's own tests decide
    (here a body at 5: the high within 10 x it, the low at least a tenth of it)."""
    path = write(tmp_path, [f"{MS0},5,20,1,5,1", f"{MS0 + 300_000},5,49.9,0.51,5,1"])
    for read in every_way(path):
        assert [(c.high, c.low) for c in read] == [(D(20), D(1)), (D("49.9"), D("0.51"))]


@pytest.mark.parametrize(("row", "needle"), [
    (f"{MS0 + 300_000},5,51,1,5,1", "high 51 is more than 10 x the open/close"),
    (f"{MS0 + 300_000},5,20,0.49,5,1", "low 0.49 is more than 10 x below the open/close"),
    (f"{MS0 + 300_000},1,2,1,1,sNaN", "volume is not a finite number"),
    (f"{MS0 + 300_000},1,2,1,1,-Infinity", "volume is not a finite number"),
    (f"{MS0 + 300_000},1,2,1,1,x", "volume is not a number: volume 'x'"),
    (f"{MS0 + 300_000},1,sNaN,1,1,1", "high is not a finite number"),
    (f"{MS0 + 300_000},1,2,0,1,1", "inconsistent candle"),
    (f"{MS0 + 300_000},1,2,1", "the row ends before its close column: a short row"),
])
def test_a_bad_row_is_refused_with_its_words(tmp_path: Path, row: str, needle: str) -> None:
    path = write(tmp_path, [f"{MS0},1,2,1,1,1", row])
    for read in (load_candles, lambda p: list(iter_candles(p, interval=FIVE_MINUTES)),
                 CandleFile):
        with pytest.raises(ValueError, match="line 3: ") as refused:
            read(path)
        assert needle in str(refused.value)


def test_a_row_out_of_order_with_a_bad_value_is_refused_for_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, [f"{MS0 + 300_000},1,2,1,1,1", f"{MS0},1,2,1,x,1"])
    with pytest.raises(ValueError, match="line 3: a price is not a number: close 'x'"):
        list(iter_candles(path, interval=FIVE_MINUTES))


def test_a_candle_files_period_is_read_from_its_rows(tmp_path: Path) -> None:
    path = write(tmp_path, [f"{MS0 + n * 300_000},1,2,1,1,1" for n in range(10)])
    period = CandleFile(path).between(T0 + 2 * FIVE_MINUTES, T0 + 5 * FIVE_MINUTES)
    assert [c.open_time for c in period] == [T0 + n * FIVE_MINUTES for n in range(2, 6)]


symbols = st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"])
picks = st.lists(st.tuples(symbols, st.integers(0, 5), st.sampled_from([1, 2, 5])),
                 max_size=25)


@settings(max_examples=100, deadline=None)
@given(picks)
def test_the_replays_batches_are_groupby_of_the_candles_in_close_order(
        chosen: list[tuple[str, int, int]]) -> None:
    """Runs of one close time, each sorted by symbol (mixed intervals close together)."""
    by_symbol: dict[str, list[Candle]] = {}
    for symbol, step, minutes in chosen:
        interval = timedelta(minutes=minutes)
        by_symbol.setdefault(symbol, []).append(Candle(
            symbol, T0 + step * FIVE_MINUTES, interval, D(1), D(1), D(1), D(1)))
    ordered = sorted((c for rows in by_symbol.values() for c in rows),
                     key=lambda c: c.close_time)   # stable: heapq.merge's ties, by stream
    expected = [sorted(run, key=lambda c: c.symbol)
                for _, run in groupby(ordered, key=lambda c: c.close_time)]

    async def replayed() -> list[tuple[datetime, list[Candle]]]:
        clock = ManualClock(T0)
        return [(clock.now(), batch) async for batch in ReplayFeed(by_symbol, clock)]

    got = asyncio.run(replayed())
    assert [batch for _, batch in got] == expected
    assert [moment for moment, _ in got] == [batch[0].close_time for batch in expected]
