"""`tradebot backtest --separate-accounts` (issue 13): each symbol on a paper account of its
own, the accounts run at once in worker processes, the portfolio their sum. Before it, no
backtest used a second core (periods apart run one after the other on one account since
68b1f98), and the option did not exist (argparse refused it)."""

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_cli import backtest
from trader import backtest_accounts
from trader.backtest_accounts import AccountRuns, run_separate_accounts
from trader.backtest_periods import run_group, run_groups
from trader.cli import build_parser, main
from trader.config import load_settings
from trader.market.replay import load_bundled
from trader.metrics import EquityPoint
from trader.report import SeparateAccounts, render_text, sum_accounts, summed_curve, symbol_rows
from trader.trade_stats import TOTAL

BALANCE = Decimal(10_000)


class RecordingBar:
    """Stands in for the parent's tqdm bar: what the workers' counts brought it to."""
    made: list["RecordingBar"] = []

    def __init__(self, total: int, **_: Any) -> None:
        self.total, self.n, self.updates = total, 0, 0
        RecordingBar.made.append(self)

    def update(self, n: float = 1) -> None:
        self.n += int(n)
        self.updates += 1

    def __enter__(self) -> "RecordingBar":
        return self

    def __exit__(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def bundled_runs(tmp_path_factory: pytest.TempPathFactory) -> AccountRuns:
    """The bundled XRPUSDT and BTCUSDT, each on its own account, on two worker processes,
    under a recording bar (progress on)."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(backtest_accounts, "tqdm", RecordingBar)
    RecordingBar.made.clear()
    try:
        return run_separate_accounts(load_settings(_env_file=None), load_bundled(),
                                     tmp_path_factory.mktemp("separate"), run_group,
                                     progress=True, workers=2)
    finally:
        monkeypatch.undo()


def test_each_account_runs_in_a_worker_process_of_its_own(bundled_runs: AccountRuns) -> None:
    assert bundled_runs.processes == 2
    assert len(set(bundled_runs.pids)) == 2 and os.getpid() not in bundled_runs.pids


def test_each_account_trades_as_its_symbol_run_alone_on_the_configured_balance(
        bundled_runs: AccountRuns, tmp_path: Path) -> None:
    """Nothing couples the accounts: each symbol's trades (and sizes) and curve are those of
    a backtest of that symbol alone; the default run of both on one account differs."""
    settings = load_settings(_env_file=None)
    bundled = load_bundled()
    for report in bundled_runs.reports:
        [symbol] = report.symbols
        [alone] = run_groups(settings, [{symbol: bundled[symbol]}], tmp_path / symbol,
                             progress=False)
        assert report.trades == alone.trades and report.trades
        assert report.curve == alone.curve and report.curve[0].equity == BALANCE
    one_account = run_groups(settings, [{"XRPUSDT": bundled["XRPUSDT"]},
                                        {"BTCUSDT": bundled["BTCUSDT"]}], tmp_path / "one",
                             progress=False)
    btc = next(r for r in bundled_runs.reports if r.symbols == ["BTCUSDT"])
    assert [t.quantity for t in one_account[1].trades] != [t.quantity for t in btc.trades]


def test_the_parent_bar_counts_every_candle_of_every_account(bundled_runs: AccountRuns) -> None:
    [bar] = RecordingBar.made
    assert bar.total == sum(r.candles for r in bundled_runs.reports) == bar.n
    assert bar.updates >= 2


def test_the_portfolio_is_the_accounts_summed(bundled_runs: AccountRuns) -> None:
    reports = bundled_runs.reports
    accounts = SeparateAccounts(len(reports), BALANCE, bundled_runs.processes)
    portfolio = sum_accounts(reports, accounts, bundled_runs.seconds, run_id="sep")
    perf = portfolio.performance
    assert perf.start_equity == 2 * BALANCE
    ends = [report.curve[-1].equity for report in reports]
    assert perf.end_equity == sum(ends) == portfolio.curve[-1].equity
    assert perf.net_pnl == sum(report.performance.net_pnl for report in reports)
    assert sorted(portfolio.trades, key=repr) == sorted(
        [t for report in reports for t in report.trades], key=repr)
    assert min(point.equity for point in portfolio.curve) > 0
    # XRPUSDT 2021, BTCUSDT 2026: BTCUSDT's account waits at 10,000 while XRPUSDT runs
    xrp = next(report for report in reports if report.symbols == ["XRPUSDT"])
    assert [p.equity for p in portfolio.curve[:len(xrp.curve)]] == [
        p.equity + BALANCE for p in xrp.curve]
    assert portfolio.periods == [(r.curve[0].at, r.curve[-1].at) for r in (xrp, *(
        r for r in reports if r is not xrp))]
    rows = {row.label: row for row in symbol_rows(portfolio)}
    for report in reports:
        [own] = [row for row in symbol_rows(report) if row.label != TOTAL]
        assert rows[own.label] == own
    text = render_text(portfolio, symbol_rows(portfolio))
    assert ("  2 separate accounts of 10,000.00 USDT each (starting capital 20,000.00 USDT), "
            "run in parallel on 2 processes (portfolio heat does not couple them)") in text
    assert "one after the other on one account" not in text
    bust = replace(xrp, notes=["the account was bust at 2021-11-20 10:00 UTC (equity -1.00 USDT)"])
    notes = sum_accounts([bust, *(r for r in reports if r is not xrp)], accounts, 1.0).notes
    assert "XRPUSDT's account: the account was bust at 2021-11-20 10:00 UTC (equity -1.00 USDT)" \
        in notes and all(note.startswith(("BTCUSDT", "XRPUSDT")) for note in notes)


def _at(minutes: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)


def test_an_account_counts_its_balance_before_its_candles_and_its_end_after() -> None:
    early = [EquityPoint(_at(0), Decimal(100)), EquityPoint(_at(5), Decimal(80))]
    late = [EquityPoint(_at(10), Decimal(100)), EquityPoint(_at(15), Decimal(130))]
    assert summed_curve([early, late], Decimal(100)) == [
        EquityPoint(_at(0), Decimal(200)), EquityPoint(_at(5), Decimal(180)),
        EquityPoint(_at(10), Decimal(180)), EquityPoint(_at(15), Decimal(210))]


@given(st.lists(st.lists(st.tuples(st.integers(0, 500), st.decimals("0.01", "1e6", places=2)),
                         min_size=1, max_size=30), min_size=1, max_size=5))
def test_the_sum_of_accounts_never_below_zero_is_never_below_zero(
        accounts: list[list[tuple[int, Decimal]]]) -> None:
    curves = [[EquityPoint(_at(minute), equity) for minute, equity in sorted(points)]
              for points in accounts]
    summed = summed_curve(curves, Decimal(10))
    assert all(point.equity > 0 for point in summed)
    last = {index: curve[-1].equity for index, curve in enumerate(curves)}
    assert summed[-1].equity == sum(last.values())


def test_the_command_reports_separate_accounts(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--separate-accounts", "--out", str(tmp_path), "--run-id", "sep",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("BTCUSDT, XRPUSDT: 2 separate accounts of 10,000.00 USDT each, run in parallel on "
            f"{min(2, os.cpu_count() or 1)} process") in out
    document = json.loads((tmp_path / "sep" / "report.json").read_text())
    assert document["accounts"]["count"] == 2 and document["accounts"]["balance"] == "10000"
    assert document["performance"]["start_equity"] == "20000"
    assert (tmp_path / "sep" / "databases" / "XRPUSDT" / "backtest.db").exists()


def test_without_the_option_one_account_and_a_pointer_to_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Negative: the default is one account (periods apart chained), no "accounts" in
    report.json, and the run says that --separate-accounts would run them in parallel."""
    assert main(["backtest", "--out", str(tmp_path), "--run-id", "one", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("2 symbols on one account of 10,000.00 USDT; --separate-accounts would run each "
            "on an account of its own, in parallel processes") in out
    assert "one account carried from each period to the next" in out
    document = json.loads((tmp_path / "one" / "report.json").read_text())
    assert "accounts" not in document
    assert document["performance"]["start_equity"] == "10000"


def test_one_symbol_with_the_option_runs_as_without_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--separate-accounts", "--symbols", "XRPUSDT", "--out",
                 str(tmp_path), "--run-id", "x", "--no-progress"]) == 0
    assert "--separate-accounts: one symbol (XRPUSDT), one account" in capsys.readouterr().out
    assert "accounts" not in json.loads((tmp_path / "x" / "report.json").read_text())


def test_a_replay_has_no_separate_accounts() -> None:
    """`tradebot run --replay` is one agent on one account: argparse refuses the option."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["run", "--replay", "--separate-accounts"])
    assert refused.value.code == 2


FAILS_ON_BTC = '''
class FailsOnBtc:
    name, warmup = "fails-on-btc", 10
    def signal(self, closed):
        if closed[-1].symbol == "BTCUSDT" and len(closed) > 20:
            return 1 / 0
        return None
'''


def test_an_account_whose_strategy_raises_ends_the_run_with_its_line(tmp_path: Path) -> None:
    """As one account's run: exit 2, one line naming the error and the symbol, no report."""
    (tmp_path / "mystrategies").mkdir()
    (tmp_path / "mystrategies" / "bad.py").write_text(FAILS_ON_BTC)
    result = backtest(tmp_path, "--separate-accounts", "--run-id", "bad",
                      TRADEBOT_STRATEGY="mystrategies.bad:FailsOnBtc")
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    [line] = [text for text in result.stderr.splitlines() if text.startswith("backtest error")]
    assert "ZeroDivisionError" in line and "BTCUSDT" in line, line
    assert "Traceback" not in result.stderr and "Portfolio" not in result.stdout
    assert list((tmp_path / "out").iterdir()) == []
