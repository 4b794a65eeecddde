"""`tradebot backtest --from DAY` (and `tradebot sweep --from`): the candles the data holds
before --from warm the engine's history up, as freqtrade's `startup_candle_count` and jesse's
warm-up candles do, so a slice trades its first hours as the full run does on the same days;
nothing of the warm-up is traded, charted, charged funding or counted in the report."""

import argparse
import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.engine_world import START, STEP, SYMBOL, make_world
from tests.test_cli import backtest, report_of
from trader.backtest_data import backtest_data
from trader.backtest_periods import overlapping_groups, run_groups
from trader.config import load_settings
from trader.domain import Candle
from trader.engine_parts import CANDLE_HISTORY
from trader.market.replay import load_bundled
from trader.strategy.default import DefaultStrategy
from trader.sweep_cli import load_sweep_data
from trader.sweep_trial import TrialPlan, run_trial

SLICE_START = datetime(2021, 11, 18, tzinfo=UTC)    # 3 days (864 candles) into the bundled XRPUSDT
LATE_START = datetime(2021, 11, 19, tzinfo=UTC)     # 1,152 candles in: more than the history holds
WARMUP = DefaultStrategy().warmup                   # 120 candles: 10 hours of 5m candles


def trades_of(folder: Path) -> list[dict[str, str]]:
    with (folder / "trades.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def timing(trade: dict[str, str]) -> tuple[str, ...]:
    """A trade's side, times, entry and why it closed; its size aside (a slice starts with
    the full balance, the full run with what its earlier trades left), and so its exit
    price too: the average of its exit fills, parts of a size of its own."""
    return (trade["side"], trade["opened_at"], trade["entry_price"], trade["closed_at"],
            trade["reason"])


def test_a_slice_trades_its_first_hours_as_the_full_run_does(tmp_path: Path) -> None:
    """Before, the slice's first 120 candles (10 h) could not trade: the full run's entry at
    00:10 and at 09:15 were missing from it."""
    assert backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "full").returncode == 0
    sliced = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-18",
                      "--run-id", "slice")
    assert sliced.returncode == 0, sliced.stderr
    full = [timing(t) for t in trades_of(tmp_path / "out" / "full")
            if t["opened_at"] >= SLICE_START.isoformat()]
    sliced_trades = [timing(t) for t in trades_of(tmp_path / "out" / "slice")]
    early = SLICE_START + WARMUP * timedelta(minutes=5)
    assert [t for t in sliced_trades if t[1] < early.isoformat()] == \
        [t for t in full if t[1] < early.isoformat()] != []
    assert sliced_trades == full


def test_the_warm_up_is_said_and_is_not_counted_in_the_report(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-19", "--run-id", "w")
    assert result.returncode == 0, result.stderr
    report = report_of(tmp_path, "w")
    assert (f"warm-up: XRPUSDT: the {CANDLE_HISTORY:,} candles before 2021-11-19 00:00 UTC "
            f"in the data (the strategy needs {WARMUP}) fed the indicators without trading; "
            "trades, equity and funding start at 2021-11-19 00:00 UTC") in report["notes"]
    bundled = load_bundled()["XRPUSDT"]
    in_window = [c for c in bundled if c.open_time >= datetime(2021, 11, 19, tzinfo=UTC)]
    assert report["candles"] == len(in_window)
    with (tmp_path / "out" / "w" / "equity.csv").open(newline="") as handle:
        assert next(csv.DictReader(handle))["at"] == "2021-11-19T00:05:00+00:00"


def test_too_few_candles_before_from_are_said_and_the_window_warms_up_the_rest(
        tmp_path: Path) -> None:
    """40 candles before --from: the run goes on, its first 80 candles warm up (as a full run
    from the data's start would: the same trades)."""
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-15T03:20",
                      "--run-id", "short")
    assert result.returncode == 0, result.stderr
    line = ("warm-up: XRPUSDT: 40 of 120 candles before 2021-11-15 03:20 UTC in the data; "
            "the first 80 candles of the window warm up")
    assert line in report_of(tmp_path, "short")["notes"]
    assert line in result.stderr
    assert backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "full").returncode == 0
    assert [timing(t) for t in trades_of(tmp_path / "out" / "short")] == \
        [timing(t) for t in trades_of(tmp_path / "out" / "full")]


def test_a_run_without_from_has_no_warm_up_and_no_note(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--to", "2021-11-16", "--run-id", "all")
    assert result.returncode == 0, result.stderr
    assert not any(note.startswith("warm-up") for note in report_of(tmp_path, "all")["notes"])


def args_for(start: datetime | None, *data: Path, end: datetime | None = None,
             symbols: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(data=list(data) or None, symbol=None, symbols=symbols,
                              start=start, end=end, funding=None)


def write_candles(path: Path, rows: list[Candle]) -> Path:
    lines = [f"{int(c.open_time.timestamp() * 1000)},{c.open},{c.high},{c.low},{c.close},"
             f"{c.volume}" for c in rows]
    path.write_text("open_time,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    return path


def test_files_of_periods_apart_each_warm_up_on_their_own_candles(tmp_path: Path) -> None:
    """Two --data files, a year apart: --from cuts the first, whose candles before it warm
    its run up, while the second (all after --from) has none; the first trades as its full
    run does from --from on."""
    xrp = load_bundled()["XRPUSDT"]
    later = [replace(c, symbol="DOGEUSDT", open_time=c.open_time + timedelta(days=365))
             for c in xrp[:600]]
    first = write_candles(tmp_path / "XRPUSDT-5m.csv", xrp)
    second = write_candles(tmp_path / "DOGEUSDT-5m.csv", later)
    settings = load_settings(_env_file=None)
    candles, funding, warmup = backtest_data(settings, args_for(LATE_START, first, second))
    assert len(warmup["XRPUSDT"]) == CANDLE_HISTORY
    assert warmup["XRPUSDT"][-1].open_time == LATE_START - timedelta(minutes=5)
    assert warmup["DOGEUSDT"] == []
    groups = overlapping_groups(candles)
    alone = run_groups(settings, groups, tmp_path / "one", progress=False,
                       funding=funding, warmup=warmup)
    whole, _, _ = backtest_data(settings, args_for(None, first))
    [full] = run_groups(settings, [whole], tmp_path / "full", progress=False)
    opened = [(t.side, t.opened_at, t.entry_price) for t in full.trades
              if t.opened_at >= LATE_START]
    assert [(t.side, t.opened_at, t.entry_price) for t in alone[0].trades] == opened
    assert alone[0].curve[0].at > LATE_START


def test_a_sweep_trial_of_a_slice_warms_up_as_the_backtest_does(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None)
    args = args_for(LATE_START, end=datetime(2021, 11, 19, 23, 59, tzinfo=UTC),
                    symbols="XRPUSDT")
    data = load_sweep_data(settings, args)
    assert len(data.warmup["XRPUSDT"]) == CANDLE_HISTORY
    result = run_trial(TrialPlan(1, {}, settings, DefaultStrategy()), data, tmp_path)
    candles, funding, warmup = backtest_data(settings, args)
    [report] = run_groups(settings, [candles], tmp_path / "bt", progress=False,
                          funding=funding, warmup=warmup)
    assert result.performance == report.performance
    assert report.trades[0].opened_at < LATE_START + WARMUP * timedelta(minutes=5)   # was none


async def test_warm_up_candles_fill_the_history_and_the_candle_breakers_without_a_tick(
        tmp_path: Path) -> None:
    """A crash in the last candles before --from trips the crash breaker until 10 minutes
    after it, as the full run's ticks did: the slice's first candles do not enter either."""
    world = await make_world(tmp_path)
    price = Decimal("100000")
    rows = [Candle(SYMBOL, START + STEP * i, STEP, price, price * Decimal("1.001"),
                   price * Decimal("0.999"), price, Decimal("10")) for i in range(30)]
    crash = Candle(SYMBOL, START + STEP * 30, STEP, price, price, price * Decimal("0.95"),
                   price * Decimal("0.95"), Decimal("10"))
    for candle in [*rows, crash]:
        world.engine.warm_up(candle)
    assert list(world.engine.candles[SYMBOL]) == [*rows, crash]
    assert world.engine.ticks == 0 and world.sent == 0
    until = crash.close_time + timedelta(minutes=10)      # its volatility is EXTREME too
    assert world.engine.guards.state.breakers == {f"crash:{SYMBOL}": until,
                                                  f"regime:{SYMBOL}": until}


def test_a_sweep_says_too_few_candles_before_from_as_the_backtest_does(tmp_path: Path) -> None:
    """A sweep trial warms up as the backtest (40 candles before --from: its first 80 warm
    up), but the sweep said nothing of it: every trial lost those hours unsaid."""
    from tests.test_sweep import run_sweep
    result = run_sweep(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-15T03:20",
                       "--to", "2021-11-15T12:00", "--grid", "strategy.channel=20",
                       "--workers", "1", "--no-progress", "--run-id", "short")
    assert result.returncode in (0, 1), result.stderr
    assert ("sweep note: warm-up: XRPUSDT: 40 of 120 candles before 2021-11-15 03:20 UTC in the "
            "data; the first 80 candles of the window warm up (the base settings' need: a "
            "trial's own strategy.window decides its own)") in result.stderr.splitlines()
    enough = run_sweep(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-16",
                       "--to", "2021-11-16T06:00", "--grid", "strategy.channel=20",
                       "--workers", "1", "--no-progress", "--run-id", "enough")
    assert "warm-up" not in enough.stderr, enough.stderr
