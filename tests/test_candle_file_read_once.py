"""Opening a candle file reads it whole once: the rows were read twice before the first
candle (every open time for the interval, then every row parsed for the checks), ~11 s for
1,000,000 rows. The interval is now the most common spacing counted during the checks'
pass (the first INFER_ROWS rows give the one to parse with; a file whose later rows space
otherwise is checked again with the right one, as rare as such a file)."""

from datetime import timedelta
from pathlib import Path

import trader.market.replay as replay
from trader.market.candle_csv import infer_interval, open_times_ms, time_unit
from trader.market.replay import INFER_ROWS, CandleFile

T0_MS = 1704067200000


def write(path: Path, minutes: list[int]) -> Path:
    path.write_text("open_time,open,high,low,close,volume\n" + "".join(
        f"{T0_MS + m * 60_000},1,2,1,1,0\n" for m in minutes))
    return path


def rows_read(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """How many rows the replay module reads from files, by either reader."""
    counted = [0]
    real_candles = replay.parse_candles

    def parse_candles(*args):  # type: ignore[no-untyped-def]
        for item in real_candles(*args):
            counted[0] += 1
            yield item
    monkeypatch.setattr(replay, "parse_candles", parse_candles)
    monkeypatch.setattr(replay, "open_times_ms", lambda path, unit, rows=None: (
        ms for ms in _counted_open_times(path, unit, rows, counted)))
    return counted


def _counted_open_times(path, unit, rows, counted):  # type: ignore[no-untyped-def]
    for ms in open_times_ms(path, unit, rows):
        counted[0] += 1
        yield ms


def test_opening_a_candle_file_reads_its_rows_once(tmp_path, monkeypatch):
    rows = 3 * INFER_ROWS
    path = write(tmp_path / "BTCUSDT-1m.csv", list(range(rows)))
    counted = rows_read(monkeypatch)
    opened = CandleFile(path)
    assert len(opened) == rows and opened.interval == timedelta(minutes=1)
    assert counted[0] <= rows + INFER_ROWS, counted[0]


def test_an_interval_that_only_the_later_rows_show_is_still_the_files(tmp_path):
    """The first INFER_ROWS + 1 rows 2 min apart (every other 1m candle missing: 2 min is no
    candle interval, so no change of interval, tests/test_candle_interval_change.py), twice
    as many after them 1 min apart: the most common spacing of the whole file is 1 min, as
    before, and the gaps count with it."""
    two = [2 * m for m in range(INFER_ROWS + 1)]
    one = [two[-1] + 1 + m for m in range(2 * INFER_ROWS + 10)]
    path = write(tmp_path / "BTCUSDT.csv", two + one)
    opened = CandleFile(path)
    unit = time_unit(path)
    assert opened.interval == infer_interval(path, open_times_ms(path, unit)) \
        == timedelta(minutes=1)
    assert opened[0].interval == opened[-1].interval == timedelta(minutes=1)
    assert opened.gaps.count == INFER_ROWS              # every 5-min step
    assert all(candle.interval == timedelta(minutes=1) for candle in opened)


def test_a_backtest_over_the_whole_file_does_not_check_it_again(tmp_path, monkeypatch):
    """`tradebot backtest --data FILE` without --from/--to: the period is the file's, so the
    file checked when opened is the one replayed (it was opened a second time and read whole
    again, a third pass with the replay's)."""
    from trader.backtest_data import select_candles
    rows = 3 * INFER_ROWS
    path = write(tmp_path / "BTCUSDT-1m.csv", list(range(rows)))
    counted = rows_read(monkeypatch)
    opened = CandleFile(path)
    after_open = counted[0]
    picked = select_candles({"BTCUSDT": opened}, None, None, None)
    assert counted[0] == after_open
    assert len(picked["BTCUSDT"]) == rows


def test_a_period_still_narrows_the_file(tmp_path):
    """The negative: with --from/--to the narrowed file counts only the period's rows."""
    from datetime import UTC, datetime

    from trader.backtest_data import select_candles
    path = write(tmp_path / "BTCUSDT-1m.csv", list(range(100)))
    start = datetime.fromtimestamp(T0_MS / 1000, UTC) + timedelta(minutes=10)
    end = start + timedelta(minutes=19)
    picked = select_candles({"BTCUSDT": CandleFile(path)}, None, start, end)["BTCUSDT"]
    assert len(picked) == 20 and picked[0].open_time == start and picked[-1].open_time == end
    assert [c.open_time for c in picked][-1] == end
