"""The sweep's plain progress line ("..., best sharpe 1.23 (trial 3)") gives the objective in
its unit's natural digits, as the table does: it printed 6 significant digits
("best sharpe 1.23457", "best win_rate 0.529412", "best net_pnl -333.093")."""

import dataclasses
from decimal import Decimal

import pytest

from trader.metrics import performance
from trader.sweep import Leaderboard
from trader.sweep_spec import OBJECTIVES
from trader.sweep_trial import TrialResult

CASES = [
    ("sharpe", 1.23456789, "best sharpe 1.23 (trial 1)"),
    ("sortino", -0.5049, "best sortino -0.50 (trial 1)"),
    ("calmar", 12.3456, "best calmar 12.35 (trial 1)"),
    ("sqn", 0.987654, "best sqn 0.99 (trial 1)"),
    ("profit_factor", 1.456789, "best profit_factor 1.46 (trial 1)"),
    ("win_rate", 0.529411764, "best win_rate 52.9% (trial 1)"),
    ("net_pnl", Decimal("-1333.0912"), "best net_pnl -1,333.09 USDT (trial 1)"),
    ("avg_trade", Decimal("-9.796837"), "best avg_trade -9.80 USDT (trial 1)"),
    ("return_pct", -3.3309123, "best return_pct -3.33% (trial 1)"),
    ("max_drawdown_pct", 9.3123456, "best max_drawdown_pct 9.31% (trial 1)"),
]


def test_every_objective_has_a_case() -> None:
    assert {name for name, _, _ in CASES} == set(OBJECTIVES)


@pytest.mark.parametrize(("objective", "value", "line"), CASES)
def test_the_progress_line_shows_the_objective_in_its_natural_digits(objective, value, line):
    board = Leaderboard(objective, OBJECTIVES[objective], pictures=0)
    stats = dataclasses.replace(performance([], []), trades=3, **{objective: value})
    board.add(TrialResult(1, {"strategy.channel": 20}, stats, 1.0))
    assert board.progress_text() == line
