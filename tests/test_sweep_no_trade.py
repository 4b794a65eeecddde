"""A trial that never trades is no setting to pick: its flat line scores Sharpe 0, drawdown
0 %, PnL 0, which beat every trial that traded and lost (review4: `--grid
strategy.min_body_atr=0.8,50` ranked the 0-trade trial #1 with a flat "#1" picture, and
optuna was told 0 and steered towards not trading). It ranks after every trial that traded,
for every objective, the table and the CSV say it made no trade, and optuna is told it was
pruned (worse than every complete trial to its TPE sampler)."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trader.metrics import EquityPoint, performance
from trader.sweep import Leaderboard, _tell
from trader.sweep_report import render_table, write_pictures, write_results_csv
from trader.sweep_spec import OBJECTIVES
from trader.sweep_trial import TrialResult

from .test_sweep import SLICE, read_rows, run_sweep

START = datetime(2021, 11, 16, tzinfo=UTC)
CURVE = [EquityPoint(START + timedelta(minutes=5 * i), Decimal(10000 - i)) for i in range(3)]


def traded(number: int, **values: object) -> TrialResult:
    """A trial of 34 trades that lost, as trial 1 of the review's grid."""
    figures: dict[str, object] = {
        "trades": 34, "wins": 12, "losses": 22, "win_rate": 0.35, "net_pnl": Decimal("-800"),
        "return_pct": -8.0, "sharpe": -2.89, "sortino": -3.5, "max_drawdown_pct": 9.0,
        "profit_factor": 0.6, "avg_trade": Decimal("-23.5"), "sqn": -1.2, "calmar": -0.5}
    stats = dataclasses.replace(performance([], []), **(figures | values))
    return TrialResult(number, {"strategy.min_body_atr": 0.8}, stats, 1.0, CURVE)


def idle(number: int) -> TrialResult:
    """A trial without a trade: every figure of a flat line (Sharpe 0, drawdown 0 %)."""
    flat = [EquityPoint(START + timedelta(minutes=5 * i), Decimal(10000)) for i in range(3)]
    return TrialResult(number, {"strategy.min_body_atr": 50}, performance(flat, []), 1.0, flat)


def failed(number: int) -> TrialResult:
    return TrialResult(number, {"strategy.min_body_atr": 9}, None, error="RuntimeError: x")


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_a_trial_without_a_trade_ranks_after_every_trial_that_traded(objective: str) -> None:
    board = Leaderboard(objective, OBJECTIVES[objective], pictures=2)
    for result in (idle(1), failed(2), traded(3)):
        board.add(result)
    assert [result.number for result in board.ranked()] == [3, 1, 2]
    assert board.best().number == 3
    assert board.curve(3) and not board.curve(1), "no picture of a flat line"


def test_a_trial_that_traded_still_ranks_by_its_value() -> None:
    """The negative case: among trials that traded nothing changes."""
    board = Leaderboard("sharpe", True, pictures=1)
    for result in (traded(1), traded(2, sharpe=1.0)):
        board.add(result)
    assert [result.number for result in board.ranked()] == [2, 1]


def test_the_table_and_the_csv_say_which_trials_made_no_trade(tmp_path: Path) -> None:
    board = Leaderboard("max_drawdown_pct", False, pictures=2)
    for result in (idle(1), traded(2), idle(3)):
        board.add(result)
    table = render_table(board, ["strategy.min_body_atr"], 30).splitlines()
    assert [line.split()[1] for line in table[1:4]] == ["2", "1", "3"]
    assert table[4] == "no trade: trials 1, 3 made none, so ranked after every trial that traded"
    rows = read_rows(write_results_csv(board, ["strategy.min_body_atr"], tmp_path / "r.csv"))
    assert [(row["rank"], row["trial"], row["status"]) for row in rows] == [
        ("1", "2", "ok"), ("2", "1", "no trade"), ("3", "3", "no trade")]
    assert [path.name for path in write_pictures(board, 3, tmp_path)] == ["equity-1-trial-2.png"]


def test_optuna_is_told_a_trial_without_a_trade_was_pruned() -> None:
    """Pruned: optuna's TPE sampler ranks it below every complete trial (a 0 from a flat
    line beat every losing trial); a trial that traded is told its value as before."""
    optuna = pytest.importorskip("optuna", reason="optuna is an optional extra")
    study = optuna.create_study(direction="maximize")
    no_trade, losing = study.ask(), study.ask()
    _tell(study, no_trade, idle(1), "sharpe", optuna)
    _tell(study, losing, traded(2), "sharpe", optuna)
    states = [(trial.state, trial.value) for trial in study.trials]
    assert states == [(optuna.trial.TrialState.PRUNED, None),
                      (optuna.trial.TrialState.COMPLETE, -2.89)]
    assert study.best_trial.number == 1


def test_calmar_without_a_value_in_any_trial_says_why_instead_of_ranking_by_nothing() -> None:
    board = Leaderboard("calmar", True, pictures=0)
    for number in (1, 2):
        board.add(traded(number, calmar=None))
    table = render_table(board, ["strategy.min_body_atr"], 30)
    assert table.splitlines()[-1] == (
        "note: no trial has a calmar value (calmar is CAGR / drawdown, and CAGR needs at "
        "least 7 days of data and a drawdown); the order is by trial number: rank by "
        "another --objective")
    assert board.progress_text() == "no calmar yet"


def test_calmar_with_a_value_has_no_note() -> None:
    board = Leaderboard("calmar", True, pictures=0)
    board.add(traded(1, calmar=None))
    board.add(traded(2))
    assert "note:" not in render_table(board, ["strategy.min_body_atr"], 30)


def test_the_reviews_grid_ranks_the_trial_that_traded_first(tmp_path: Path) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.min_body_atr=0.8,50",
                       "--workers", "2", "--no-progress", "--run-id", "idle")
    assert result.returncode == 0, result.stderr
    rows = read_rows(tmp_path / "out" / "idle" / "results.csv")
    assert [(row["rank"], row["strategy.min_body_atr"], row["status"]) for row in rows] == [
        ("1", "0.8", "ok"), ("2", "50", "no trade")]
    assert int(rows[0]["trades"]) > 0 and rows[1]["trades"] == "0"
    assert "no trade: trial 2 made none" in result.stdout


def test_calmar_on_less_than_a_week_is_said_before_the_sweep(tmp_path: Path) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.channel=20,30", "--objective",
                       "calmar", "--workers", "2", "--no-progress", "--run-id", "calmar")
    assert result.returncode == 0, result.stderr
    assert ("sweep note: calmar needs at least 7 days of data (its CAGR is not annualised "
            "from less); this data covers 2 d: no trial will have a value, rank by "
            "another --objective") in result.stderr
    assert "note: no trial has a calmar value" in result.stdout


def test_a_trial_without_a_trade_has_no_win_rate(tmp_path: Path) -> None:
    """h-review13: the table and the CSV said "0.0%" where the backtest report says "-";
    a trial that traded keeps its win rate (the negative case)."""
    board = Leaderboard("sharpe", True, pictures=1)
    for result in (traded(1), idle(2)):
        board.add(result)
    table = render_table(board, ["strategy.min_body_atr"], 30).splitlines()
    win = table[0].split().index("win")
    assert table[1].split()[win] == "35.0%"
    assert table[2].split()[win] == "-"
    rows = read_rows(write_results_csv(board, ["strategy.min_body_atr"], tmp_path / "r.csv"))
    assert [row["win_rate"] for row in rows] == ["0.35", ""]


def test_a_best_trials_picture_names_every_parameter_of_the_trial() -> None:
    """The pictures exist to tell trials apart: three settings do not fit a bold title, so
    the title is the rank and trial and every `name=value` is on the line under it, inside
    the picture (it was cut at 42 characters: 'TRADEBOT_RISK_BASE=0.0...')."""
    from trader.report_chart import draw_equity_chart
    from trader.sweep_report import picture_headline
    params = {"strategy.channel": 30, "strategy.reward_risk": 2.5, "TRADEBOT_RISK_BASE": 0.015}
    result = dataclasses.replace(traded(14), params=params)
    title, detail = picture_headline(1, result)
    assert title == "#1 trial 14"
    assert detail == "channel=30  reward_risk=2.5  risk_base=0.015"
    figure = draw_equity_chart(CURVE, title, detail)
    texts = [text.get_text() for text in figure.texts]
    assert texts[0].startswith(title) and detail in texts
    renderer = figure.canvas.get_renderer()
    assert all(text.get_window_extent(renderer).x1 <= 1080 for text in figure.texts)
