"""A file whose rows change interval part-way (15m rows, then 5m rows: two downloads joined
into one file) is refused naming the line where the second interval begins. It ran as a 5m
file whose every 15m step was a gap (the most common spacing won), or was refused at its
first row for a spacing "less than the file's" when the other interval had more rows."""

from pathlib import Path

import pytest

from tests.test_backtest_input import HEADER, one_error_line
from tests.test_cli import backtest
from trader.market.interval_change import STRETCH
from trader.market.replay import CandleFile, load_candles

T0_MS = 1704067200000           # 2024-01-01 00:00 UTC
MINUTE_MS = 60_000


def candle_rows(minutes: list[int]) -> list[str]:
    return [f"{T0_MS + m * MINUTE_MS},1.0,1.1,0.9,1.05,100" for m in minutes]


def stretches(*parts: tuple[int, int]) -> list[int]:
    """Open minutes: (rows, spacing in minutes) one after the other."""
    minutes: list[int] = []
    for rows, spacing in parts:
        start = minutes[-1] + spacing if minutes else 0
        minutes += [start + spacing * i for i in range(rows)]
    return minutes


def write(path: Path, minutes: list[int]) -> Path:
    path.write_text(HEADER + "\n".join(candle_rows(minutes)) + "\n")
    return path


@pytest.mark.parametrize(("parts", "expected"), [
    # 15m rows at lines 2-21, 5m rows from line 22 (5m after line 21's)
    (((20, 15), (40, 5)), "line 22: the rows change interval here, from 15 min (up to line 21) "
                          "to 5 min"),
    (((40, 5), (20, 15)), "line 42: the rows change interval here, from 5 min (up to line 41) "
                          "to 15 min"),
    (((20, 5), (40, 15)), "line 22: the rows change interval here, from 5 min (up to line 21) "
                          "to 15 min"),
])
def test_rows_that_change_interval_are_refused_where_they_change(
        tmp_path: Path, parts: tuple[tuple[int, int], ...], expected: str) -> None:
    path = write(tmp_path / "BTCUSDT.csv", stretches(*parts))
    message = (f"{path}: {expected}: candles of two intervals in one file? Keep one interval "
               "per file")
    for read in (CandleFile, load_candles):
        with pytest.raises(ValueError) as caught:
            read(path)
        assert str(caught.value) == message


def test_a_backtest_of_such_a_file_stops_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-5m.csv", stretches((20, 15), (40, 5)))
    assert one_error_line(backtest(tmp_path, "--data", str(path))).startswith(
        f"backtest error: {path}: line 22: the rows change interval here")


def test_missing_rows_are_no_change_of_interval(tmp_path: Path) -> None:
    """The negatives: a few 15m steps in a row in 5m candles, and every other row missing
    for long (10 min steps: no candle interval) are gaps, as they were."""
    few = stretches((30, 5), (STRETCH - 1, 15), (30, 5))
    assert len(CandleFile(write(tmp_path / "BTCUSDT-5m.csv", few))) == len(few)
    halves = stretches((100, 5), (40, 10), (100, 5))
    opened = CandleFile(write(tmp_path / "ETHUSDT-5m.csv", halves))
    assert len(opened) == len(halves) and opened.gaps.count == 40
