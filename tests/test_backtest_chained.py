"""Periods apart on one account (h-review13): two --data files 200 days apart ran each on a
fresh 10,000 USDT paper account and the portfolio added the second's PnL onto the first's
end, printing `Equity 10,000.00 -> -9,161.31` and a max drawdown of 188.78 %; the bundled
quick start's BTCUSDT trades were sized on 10,000, not on the equity XRPUSDT left. Now each
later period starts with the equity (and the risk record: equity peak, fraction) the one
before ended with (run one after the other), and a bust account runs no later period."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from trader import backtest_periods
from trader.backtest_periods import overlapping_groups, run_groups
from trader.config import load_settings
from trader.market.replay import load_bundled
from trader.metrics import EquityPoint, performance
from trader.report import BacktestReport, combine


def test_a_later_period_is_sized_on_the_equity_the_earlier_one_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(_env_file=None)
    groups = overlapping_groups(load_bundled())           # XRPUSDT 2021, then BTCUSDT 2026
    assert [sorted(group) for group in groups] == [["XRPUSDT"], ["BTCUSDT"]]
    xrp, btc = run_groups(settings, groups, tmp_path / "chained", progress=False)
    assert "one account carried from each period to the next" in capsys.readouterr().out
    left = xrp.curve[-1].equity
    assert left != settings.paper_balance
    # as one account: XRPUSDT's equity peak (the risk fraction's drawdown base) carries over
    assert Decimal(xrp.risk_state["peak"]) > left and xrp.risk_state["fraction"] == "0.015"
    alone = backtest_periods.run_group(settings.model_copy(update={"paper_balance": left}),
                                       groups[1], tmp_path / "alone", None, {},
                                       risk_state=xrp.risk_state)
    assert btc.trades == alone.trades and btc.curve == alone.curve
    [fresh] = run_groups(settings, groups[1:], tmp_path / "fresh", progress=False)
    assert [t.quantity for t in btc.trades] != [t.quantity for t in fresh.trades]
    portfolio = combine([xrp, btc])
    assert portfolio.curve == xrp.curve + btc.curve       # joined, not shifted
    assert portfolio.performance.end_equity == btc.curve[-1].equity
    assert portfolio.performance.net_pnl == xrp.performance.net_pnl + btc.performance.net_pnl


def _report(symbol: str, end: Decimal) -> BacktestReport:
    first = load_bundled()[symbol][0].close_time
    curve = [EquityPoint(first, Decimal(10_000)), EquityPoint(first, end)]
    return BacktestReport(performance=performance(curve, []), trades=[], curve=curve,
                          symbols=[symbol], candles=2, seconds=0.1)


def test_a_bust_account_runs_no_later_period(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    balances: list[Decimal] = []

    def run_group(settings, group, out_dir, funding, warmup, **_):  # type: ignore[no-untyped-def]
        balances.append(settings.paper_balance)
        return _report(next(iter(group)), Decimal(-12))
    monkeypatch.setattr(backtest_periods, "run_group", run_group)
    groups = overlapping_groups(load_bundled())
    reports = run_groups(load_settings(_env_file=None), groups, tmp_path, progress=False)
    assert balances == [Decimal(10_000)]                  # BTCUSDT never ran
    assert [r.symbols for r in reports] == [["XRPUSDT"]]
    assert reports[0].notes[-1] == (
        "the account was bust at the end of XRPUSDT's period (equity -12.00 USDT): the "
        "later periods (BTCUSDT) were not run")


def test_one_period_runs_on_the_configured_balance(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative: one group (one period, one account) is run once, on TRADEBOT_PAPER_BALANCE,
    with no note and no chaining line."""
    balances: list[Decimal] = []

    def run_group(settings, group, out_dir, funding, warmup, **_):  # type: ignore[no-untyped-def]
        balances.append(settings.paper_balance)
        return replace(_report("XRPUSDT", Decimal(9_000)), symbols=sorted(group))
    monkeypatch.setattr(backtest_periods, "run_group", run_group)
    bundled = load_bundled()
    [report] = run_groups(load_settings(_env_file=None, paper_balance=Decimal(5_000)),
                          [{"XRPUSDT": bundled["XRPUSDT"]}], tmp_path, progress=False)
    assert balances == [Decimal(5_000)] and report.notes == []


def test_periods_apart_show_one_bar_over_the_whole_run(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Found by h-review13: periods apart in worker processes showed no progress at all
    (20-28 s of silence on a terminal). Now one bar counts every period's candles, labelled
    with the period running."""
    groups = overlapping_groups(load_bundled())
    total = sum(len(rows) for group in groups for rows in group.values())
    run_groups(load_settings(_env_file=None), groups, tmp_path, progress=True)
    frames = [frame for frame in capsys.readouterr().err.split("\r") if f"/{total} " in frame]
    assert any(frame.startswith("XRPUSDT:") for frame in frames), frames
    # BTCUSDT's frames count on from XRPUSDT's candles: one bar, one ETA
    first = len(groups[0]["XRPUSDT"])
    assert any(frame.startswith("BTCUSDT:") and int(frame.split("/")[0].split()[-1]) > first
               for frame in frames), frames


async def test_a_period_whose_equity_falls_to_zero_stops_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An account at or below 0 is not traded on: the run ends at that candle and says so
    (the equity is forced below 0, as a gap through a leveraged position's stop would)."""
    from trader.backtest import run_backtest
    from trader.domain import Balance

    monkeypatch.setattr(Balance, "equity", property(lambda balance: Decimal(-5)))
    rows = load_bundled()["XRPUSDT"][:300]
    report = await run_backtest(load_settings(_env_file=None), {"XRPUSDT": rows}, tmp_path,
                                progress=False)
    assert report.candles < len(rows) and report.curve[-1].equity == -5
    assert report.notes[-1] == (
        f"the account was bust at {report.curve[-1].at:%Y-%m-%d %H:%M} UTC (equity -5.00 "
        "USDT): the run stopped there, no later candle was traded")
