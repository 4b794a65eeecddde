"""CSV candles, the bundled data, the replay feed driving the clock, stale and gap detection."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from trader.clock import ManualClock
from trader.domain import Candle
from trader.market.feed import FeedIssueKind, FeedMonitor, merge_backfill
from trader.market.replay import (
    CandleFile,
    ReplayFeed,
    bundled_data_files,
    bundled_funding_files,
    iter_candles,
    load_bundled,
    load_bundled_funding,
    load_candles,
    symbol_from_file_name,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
HEADER = "open_time,open,high,low,close,volume\n"


def write_csv(folder: Path, name: str, rows: list[str]) -> Path:
    path = folder / name
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return path


def row(minute: int, o: str = "100", h: str = "101", low: str = "99", c: str = "100.5") -> str:
    return f"{MS0 + minute * 60_000},{o},{h},{low},{c},12.5"


def candles(symbol: str, minutes: int, count: int, start: int = 0) -> list[Candle]:
    step = timedelta(minutes=minutes)
    return [Candle(symbol, T0 + (start + i) * step, step, D(100), D(101), D(99), D(100))
            for i in range(count)]


# --- loading ----------------------------------------------------------------------------
def test_load_candles_takes_symbol_from_file_name_and_infers_the_interval(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "ETHUSDT-5m.csv", [row(0), row(5), row(15)])   # one gap
    loaded = load_candles(path)
    assert [c.symbol for c in loaded] == ["ETHUSDT"] * 3
    assert {c.interval for c in loaded} == {timedelta(minutes=5)}
    assert loaded[0].open_time == T0 and loaded[0].close == D("100.5")
    assert loaded[0].volume == D("12.5")
    assert load_candles(path, symbol="BTCUSDT")[0].symbol == "BTCUSDT"


@pytest.mark.parametrize(("rows", "needle"), [
    ([row(0), row(1, c="abc")], "line 3"),
    ([row(0), f"{MS0 + 60_000},100,99,98,100.5,1"], "line 3: inconsistent candle"),
    ([row(1), row(0)], "line 3: open_time 2024-01-01 00:00 UTC is before"),
    ([row(0), "yesterday,1,1,1,1,1"], "line 3: open_time 'yesterday'"),
    # a short row: it said "a price is not a number: close None" (found by a reviewer)
    ([row(0), f"{MS0 + 60_000},100,101"], "line 3: the row ends before its low column"),
])
def test_bad_rows_raise_value_error_naming_file_and_line(tmp_path: Path, rows: list[str],
                                                         needle: str) -> None:
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", rows)
    with pytest.raises(ValueError, match="BTCUSDT-1m.csv") as caught:
        load_candles(path)
    assert needle in str(caught.value)


def read_every_way(path: Path) -> list[str]:
    """The error each reader of a candle file gives: loaded, streamed, opened for a backtest."""
    errors = []
    for read in (load_candles, lambda p: list(iter_candles(p)), CandleFile):
        with pytest.raises(ValueError) as refused:
            read(path)
        errors.append(str(refused.value))
    return errors


def test_a_duplicate_row_is_named_as_one(tmp_path: Path) -> None:
    """Files joined from two downloads repeat the rows they share: the line says so (it
    said "open_time not after the previous row", which a reader had to decode)."""
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", [row(0), row(1), row(1), row(2)])
    for error in read_every_way(path):
        assert "line 4: open_time 2024-01-01 00:01 UTC repeats the previous row's" in error
        assert "a duplicate row" in error, error


def test_rows_out_of_time_order_are_named_with_both_times(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", [row(0), row(2), row(1), row(3)])
    for error in read_every_way(path):
        assert ("line 4: open_time 2024-01-01 00:01 UTC is before the previous row's "
                "(2024-01-01 00:02 UTC)") in error, error
        assert "sort the rows by open_time, oldest first" in error, error


@pytest.mark.parametrize(("bad_row", "needle"), [
    (row(1, c="nan"), "line 3: close is not a finite number"),
    (row(1, h="inf"), "line 3: high is not a finite number"),
    (row(1).replace(",12.5", ",NaN"), "line 3: volume is not a finite number"),
    (row(1, h="1e30"), "line 3: high 1e30 is more than 10 x the open/close: a bad row?"),
    (row(1, low="9.9"), "line 3: low 9.9 is more than 10 x below the open/close: a bad row?"),
    (row(1, "1e400", "1e400", "1e400", "1e400"), "line 3: high 1e400 is larger than"),
])
def test_numbers_no_market_makes_are_refused_naming_the_line_and_field(
        tmp_path: Path, bad_row: str, needle: str) -> None:
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", [row(0), bad_row])
    with pytest.raises(ValueError, match="BTCUSDT-1m.csv") as caught:
        load_candles(path)
    assert needle in str(caught.value)


def test_a_wick_within_ten_times_the_body_is_a_candle(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", [row(0, h="999", low="10.1")])
    assert load_candles(path)[0].high == D(999)


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(HEADER + row(0) + "\n" + row(1) + "\n", encoding="utf-8-sig")
    assert [c.open_time for c in load_candles(path)] == [T0, T0 + timedelta(minutes=1)]


def test_missing_columns_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("time,price\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        load_candles(path)
    with pytest.raises(ValueError, match="nothing.csv"):
        load_candles(tmp_path / "nothing.csv")


# A new user's first file is often a spreadsheet's export. (Binance's kline downloads, which
# have no header line before 2022, are read without one: tests/test_binance_kline_files.py.)
@pytest.mark.parametrize(("text", "hint"), [
    ("", "the file is empty"),
    ("1704067200000,1.0,1.1,0.9,1.05,100\n",
     "line 1 holds values, not column names: the file has no header line"),
    ("open_time;open;high;low;close;volume\n1;2;3;1;2;5\n", "columns separated by ';'"),
    ("Open_Time,Open,High,Low,Close,Volume\n1,2,3,1,2,5\n", "column names are lower-case"),
])
def test_an_unusable_header_says_what_is_wrong_with_it(tmp_path: Path, text: str,
                                                        hint: str) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        load_candles(path)
    message = str(caught.value)
    assert hint in message
    assert "open_time,open,high,low,close" in message, "the fix names the header expected"


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1000), ("µs", 1_000_000)])
def test_open_time_in_seconds_milliseconds_or_microseconds_is_detected(
        tmp_path: Path, unit: str, scale: int) -> None:
    first = int(T0.timestamp())
    rows = [f"{(first + minute * 60) * scale},100,101,99,100.5,1" for minute in (0, 1, 2)]
    loaded = load_candles(write_csv(tmp_path, "BTCUSDT-1m.csv", rows))
    assert [c.open_time for c in loaded] == [T0 + timedelta(minutes=m) for m in (0, 1, 2)]
    assert {c.interval for c in loaded} == {timedelta(minutes=1)}


@pytest.mark.parametrize(("rows", "needle"), [
    (["0,1,1,1,1,1", "60,1,1,1,1,1"], "line 2: open_time 0 (s) is 1970-01-01, outside 2010..2100"),
    ([f"{10**18},1,1,1,1,1"], "line 2: open_time 1000000000000000000 is too large"),
    ([f"{MS0},1,1,1,1,1", f"{MS0 // 1000 + 60},1,1,1,1,1"],
     "line 3: open_time 1704067260 is not in ms like the first row"),
])
def test_times_in_no_known_unit_or_mixed_units_are_refused_with_the_line(
        tmp_path: Path, rows: list[str], needle: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_candles(write_csv(tmp_path, "BTCUSDT-1m.csv", rows))
    assert needle in str(caught.value)


@pytest.mark.parametrize("name", ["BTCUSDT-15m.csv", "btcusdt.csv", "BTCUSDT-1m-2024-01.csv"])
def test_the_symbol_comes_from_a_file_name_that_says_it(name: str) -> None:
    assert symbol_from_file_name(Path(name)) == "BTCUSDT"


@pytest.mark.parametrize("name", ["mydata.csv", "candles-5m.csv", "BTC-5m.csv", "data.csv"])
def test_a_file_name_without_a_symbol_needs_the_symbol_given(tmp_path: Path, name: str) -> None:
    path = write_csv(tmp_path, name, [row(0), row(1)])
    assert symbol_from_file_name(path) is None
    with pytest.raises(ValueError, match="does not say the symbol"):
        load_candles(path)
    assert {c.symbol for c in load_candles(path, symbol="ethusdt")} == {"ETHUSDT"}
    with pytest.raises(ValueError, match="not a USD-M symbol"):
        load_candles(path, symbol="MYDATA")


def test_bundled_data_loads_real_candles() -> None:
    bundled = load_bundled()
    assert set(bundled) == {"BTCUSDT", "XRPUSDT"}
    assert (len(bundled["BTCUSDT"]), bundled["BTCUSDT"][0].interval) == (668, timedelta(minutes=15))
    assert (len(bundled["XRPUSDT"]), bundled["XRPUSDT"][0].interval) == (1999, timedelta(minutes=5))
    assert bundled["BTCUSDT"][0].open_time == datetime(2026, 2, 8, 8, 30, tzinfo=UTC)
    funding = load_bundled_funding()["XRPUSDT"]
    assert len(funding) == 91 and funding[0][1] == D("0.0001")
    files = bundled_data_files() + bundled_funding_files()
    assert sum(p.stat().st_size for p in files) < 150_000


# --- replay -------------------------------------------------------------------------------
async def test_replay_batches_two_symbols_in_close_time_order_and_drives_the_clock() -> None:
    data = {"BTCUSDT": candles("BTCUSDT", 15, 2), "ETHUSDT": candles("ETHUSDT", 5, 6)}
    clock = ManualClock(T0)
    seen = []
    async for batch in ReplayFeed(data, clock):
        assert {c.close_time for c in batch} == {clock.now()}
        seen.append([(c.symbol, c.close_time - T0) for c in batch])
    minutes = [timedelta(minutes=m) for m in (5, 10, 15, 20, 25, 30)]
    assert seen == [
        [("ETHUSDT", minutes[0])], [("ETHUSDT", minutes[1])],
        [("BTCUSDT", minutes[2]), ("ETHUSDT", minutes[2])],
        [("ETHUSDT", minutes[3])], [("ETHUSDT", minutes[4])],
        [("BTCUSDT", minutes[5]), ("ETHUSDT", minutes[5])],
    ]
    assert clock.now() == T0 + timedelta(minutes=30)


async def test_replay_paces_through_clock_sleep_and_jumps_long_silences() -> None:
    data = {"BTCUSDT": candles("BTCUSDT", 1, 3) + candles("BTCUSDT", 1, 2, start=10_000)}
    clock = ManualClock(T0)
    feed = ReplayFeed(data, clock, speed=600.0)   # 60 s of feed time = 0.1 s of wall time
    started = time.perf_counter()
    closes = [batch[0].close_time async for batch in feed]
    elapsed = time.perf_counter() - started
    assert 0.39 <= elapsed < 2.0    # 4 paced minutes; the week-long gap is jumped
    assert closes[-1] == clock.now() == T0 + timedelta(minutes=10_002)
    assert feed.total == 5


# --- feed monitor -------------------------------------------------------------------------
def test_stale_after_thirty_seconds_past_the_expected_close_then_resumed() -> None:
    monitor = FeedMonitor()
    first, second = candles("BTCUSDT", 1, 2)
    monitor.on_candle("BTCUSDT", first, first.close_time)
    due = second.close_time
    assert monitor.check(due + timedelta(seconds=30)) == []
    stale = monitor.check(due + timedelta(seconds=31))
    assert [(i.kind, i.symbol, i.first) for i in stale] == [(FeedIssueKind.STALE, "BTCUSDT", True)]
    assert monitor.is_stale("BTCUSDT")
    again = monitor.check(due + timedelta(seconds=45))
    assert [(i.kind, i.first) for i in again] == [(FeedIssueKind.STALE, False)]
    monitor.on_candle("BTCUSDT", second, due + timedelta(seconds=50))
    assert [i.kind for i in monitor.check(due + timedelta(seconds=50))] == [FeedIssueKind.RESUMED]
    assert not monitor.is_stale("BTCUSDT") and monitor.check(due + timedelta(seconds=55)) == []


def test_a_watched_symbol_without_any_candle_goes_stale() -> None:
    monitor = FeedMonitor()
    monitor.watch("ETHUSDT", T0, timedelta(minutes=1))
    assert monitor.check(T0 + timedelta(seconds=90)) == []
    assert [i.kind for i in monitor.check(T0 + timedelta(seconds=91))] == [FeedIssueKind.STALE]


def test_gap_lists_the_missing_open_times_once() -> None:
    monitor = FeedMonitor()
    rows = candles("BTCUSDT", 1, 5)
    monitor.on_candle("BTCUSDT", rows[0], rows[0].close_time)
    monitor.on_candle("BTCUSDT", rows[3], rows[3].close_time)
    issues = monitor.check(rows[3].close_time)
    assert [(i.kind, i.missing) for i in issues] == [
        (FeedIssueKind.GAP, [rows[1].open_time, rows[2].open_time])]
    assert monitor.check(rows[3].close_time) == []


def test_a_gap_is_told_with_the_new_candles_interval_after_the_interval_changes() -> None:
    """The next open time is kept from the last candle only for that candle's interval: a
    5 m candle 5 min after a 1 m one is no gap (last + its own 5 min), a 1 m candle 2 min
    after a 1 m one is (one missing), and the stale time follows each candle's interval."""
    monitor = FeedMonitor()
    one, five = timedelta(minutes=1), timedelta(minutes=5)
    first = Candle("BTCUSDT", T0, one, D(1), D(1), D(1), D(1))
    monitor.on_candle("BTCUSDT", first, T0 + one)
    later = Candle("BTCUSDT", T0 + five, five, D(1), D(1), D(1), D(1))
    monitor.on_candle("BTCUSDT", later, T0 + 2 * five)
    assert monitor.check(T0 + 2 * five) == []
    assert not monitor.has_issues(T0 + 3 * five + monitor.stale_after)
    assert monitor.has_issues(T0 + 3 * five + monitor.stale_after + timedelta(seconds=1))
    monitor = FeedMonitor()
    monitor.on_candle("BTCUSDT", first, T0 + one)
    monitor.on_candle("BTCUSDT", Candle("BTCUSDT", T0 + 2 * one, timedelta(seconds=60), D(1),
                                        D(1), D(1), D(1)), T0 + 3 * one)
    assert [i.missing for i in monitor.check(T0 + 3 * one)] == [[T0 + one]]


def test_a_backfilled_candle_is_dropped_from_an_unreported_gap() -> None:
    monitor = FeedMonitor()
    rows = candles("BTCUSDT", 1, 4)
    monitor.on_candle("BTCUSDT", rows[0], rows[0].close_time)
    monitor.on_candle("BTCUSDT", rows[3], rows[3].close_time)
    monitor.on_candle("BTCUSDT", rows[1], rows[3].close_time)
    assert [i.missing for i in monitor.check(rows[3].close_time)] == [[rows[2].open_time]]
    assert monitor.last_open("BTCUSDT") == rows[3].open_time


def test_merge_backfill_inserts_missing_candles_in_order_without_duplicates() -> None:
    rows = candles("BTCUSDT", 1, 5)
    existing = [rows[0], rows[3], rows[4]]
    replacement = Candle("BTCUSDT", rows[3].open_time, rows[3].interval, D(1), D(1), D(1), D(1))
    still_open = Candle("BTCUSDT", rows[4].open_time + rows[4].interval, rows[4].interval,
                        D(1), D(1), D(1), D(1), closed=False)
    other_symbol = candles("ETHUSDT", 1, 3)[2]
    merged = merge_backfill(existing, [rows[1], rows[2], replacement, still_open, other_symbol])
    assert merged == rows


def test_a_header_with_spaces_after_its_commas_is_read(tmp_path: Path) -> None:
    """"open_time, open, high, low, close, volume" (a spreadsheet's export) was refused as
    "column names are lower-case" (found by a reviewer): the names are read trimmed."""
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text("open_time, open, high, low, close, volume\n" + row(0) + "\n" + row(1)
                    + "\n")
    for read in (load_candles, lambda p: list(CandleFile(p))):
        assert [c.open_time for c in read(path)] == [T0, T0 + timedelta(minutes=1)]


def test_a_negative_volume_is_refused_naming_the_line(tmp_path: Path) -> None:
    """-5 was taken while nan was refused (found by a reviewer)."""
    path = write_csv(tmp_path, "BTCUSDT-1m.csv", [row(0), f"{MS0 + 60_000},100,101,99,100,-5"])
    with pytest.raises(ValueError, match="line 3: volume -5 is negative"):
        load_candles(path)


def test_a_newest_first_file_is_named_as_one(tmp_path: Path) -> None:
    """Rows newest first in a file whose name gives no interval said "cannot infer the
    candle interval (fewer than two rows ...)" of 1,999 rows (found by a reviewer)."""
    path = write_csv(tmp_path, "candles.csv", [row(m) for m in reversed(range(50))])
    with pytest.raises(ValueError, match="newest first"):
        load_candles(path, symbol="BTCUSDT")


def test_files_of_two_intervals_joined_are_refused_where_they_change(tmp_path: Path) -> None:
    """200 rows 15 min apart, then 468 rows an hour apart: the file's interval is its most
    common spacing (1 h), so each 15-min row was replayed as an hour's candle, overlapping
    the next three, with no word (found by a reviewer). It was then refused at its line 3,
    the first row closer to the previous one than an hour; now the line where the hourly
    rows begin is named (tests/test_candle_interval_change.py)."""
    fifteen = [row(15 * m) for m in range(200)]
    hourly = [row(15 * 199 + 60 * (h + 1)) for h in range(468)]
    path = write_csv(tmp_path, "BTCUSDT-mixed.csv", fifteen + hourly)
    for read in (load_candles, CandleFile):
        with pytest.raises(ValueError) as refused:
            read(path)
        error = str(refused.value)
        assert "line 202: the rows change interval here, from 15 min (up to line 201) to " \
               "1 h: candles of two intervals in one file?" in error, error


def test_a_row_off_the_grid_is_named_as_a_mistyped_time(tmp_path: Path) -> None:
    """5-min rows, one of them a second late (00:10:01): the next row, 4 min 59 s after it,
    was blamed on "files of two intervals joined?" (found by a reviewer). The row off the
    grid the candles open on is named instead, whichever of the two it is."""
    late = [row(5 * m) for m in range(3)] + [f"{MS0 + 10 * 60_000 + 1000},100,101,99,100,1"] \
        + [row(5 * m) for m in range(3, 40)]
    late.pop(2)                                   # 00:10 replaced by 00:10:01
    early = [row(5 * m) for m in range(2)] + [f"{MS0 + 10 * 60_000 - 1000},100,101,99,100,1"] \
        + [row(5 * m) for m in range(3, 40)]
    for name, rows, line, moment in (("late", late, 4, "2024-01-01 00:10:01"),
                                     ("early", early, 4, "2024-01-01 00:09:59")):
        path = write_csv(tmp_path, f"BTCUSDT-{name}.csv", rows)
        for read in (load_candles, CandleFile):
            with pytest.raises(ValueError) as refused:
                read(path)
            error = str(refused.value)
            assert f"line {line}: open_time {moment} UTC is off the 5 min grid" in error, error
            assert "two intervals joined" not in error, error


def test_a_file_whose_rows_are_mostly_finer_has_gaps_not_overlaps(tmp_path: Path) -> None:
    """The negative: most rows 15 min apart with a few an hour apart read as 15-min candles
    with gaps (a warning, as before), not as overlaps. (A stretch of STRETCH hourly rows or
    more is one of hourly candles: tests/test_candle_interval_change.py.)"""
    rows = [row(15 * m) for m in range(300)] + [row(15 * 299 + 60 * (h + 1)) for h in range(5)]
    path = write_csv(tmp_path, "BTCUSDT-15m.csv", rows)
    assert len(load_candles(path)) == len(CandleFile(path)) == 305


@pytest.mark.parametrize("packed, needle", [("zip", "unzip it"), ("gzip", "gunzip"),
                                            ("utf-16", "UTF-16")])
def test_a_zipped_download_is_named_as_one(tmp_path: Path, packed: str, needle: str) -> None:
    """Binance's kline downloads come as .zip: passed as they are, the error was the
    decoder's ("'utf-8' codec can't decode byte 0x81 ..."), which does not say what to do
    (found by a reviewer). Now the file is named for what it is."""
    import gzip
    import zipfile
    text = "open_time,open,high,low,close,volume\n" + "\n".join(row(m) for m in range(3)) + "\n"
    path = tmp_path / "BTCUSDT-1m.csv"
    if packed == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("BTCUSDT-1m-2024-01.csv", text)
    elif packed == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-16")
    for read in (load_candles, CandleFile):
        with pytest.raises(ValueError) as refused:
            read(path)
        assert needle in str(refused.value) and "BTCUSDT-1m.csv" in str(refused.value), \
            str(refused.value)
