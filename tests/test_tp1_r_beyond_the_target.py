"""TRADEBOT_TP1_R beyond the strategy's target: legal, not a configuration error. A target is
each trade's own (the strategy's reward/risk, moved by the regime; a custom strategy sets
any tp_pct per signal), so a TP1_R too far for these trades may fit others; a trade whose
TP1 does not lie before its target runs on one take-profit (trader/management.py
`with_exit_plan`). The backtest's note says so, and what to change, instead of only that
it happened."""

from trader.backtest_notes import exit_plan_notes
from trader.config import load_settings
from trader.position import ExitPlan


def test_the_note_says_tp1_r_is_legal_and_what_to_change() -> None:
    settings = load_settings(_env_file=None, exit_plan="two", tp1_r="5")
    [note] = exit_plan_notes(settings, [ExitPlan.ONE] * 3)
    assert note.startswith("TRADEBOT_EXIT_PLAN=two, yet every one of the trades had one "
                           "take-profit"), note
    assert "not an error: each trade's target is its own" in note, note
    assert "lower TRADEBOT_TP1_R for two take-profits on these trades" in note, note


def test_a_tp1_r_beyond_the_default_target_starts() -> None:
    assert load_settings(_env_file=None, exit_plan="two", tp1_r="5").tp1_r == 5
