"""An optuna range the strategy's rules between fields refuse at an end, whatever the other
parameters: refused before the sweep, as a grid refuses the same value (review4:
`--search strategy.channel=10..200:10 --trials 8` ran, and 4 of 8 trials failed with
"window must cover..."). Values refused only in some combinations are left to the study,
and optuna is told such a trial was pruned, so it draws them less."""

import pytest

from tests.test_sweep import SLICE, read_rows, run_sweep
from trader.config import load_settings
from trader.sweep import Sweep, _tell
from trader.sweep_spec import SweepError, SweepSpec, with_options
from trader.sweep_trial import TrialResult

optuna = pytest.importorskip("optuna", reason="optuna is an optional extra: pip install '.[optuna]'")
RULE = "window must cover the slow EMA, the channel and the ATR"


@pytest.fixture
def base():
    return load_settings(_env_file=None, symbols="XRPUSDT")


def study(*search: str) -> SweepSpec:
    return with_options(SweepSpec(), grid=[], search=list(search))


def test_a_range_end_the_strategy_refuses_is_refused_before_the_sweep(base) -> None:
    with pytest.raises(SweepError) as refused:
        Sweep(study("strategy.channel=10..200:10"), base)
    assert str(refused.value) == (f"strategy.channel=200 (an end of its range 10..200): {RULE}; "
                                  "narrow it, or change the other parameters")


def test_a_choice_the_strategy_refuses_is_refused_before_the_sweep(base) -> None:
    with pytest.raises(SweepError, match=rf"strategy.window=40 \(one of its choices\): {RULE}"):
        Sweep(study("strategy.window=40,130"), base)


@pytest.mark.parametrize("search", [
    ("strategy.channel=10..110",),                                  # within the window of 120
    ("strategy.channel=10..119:10",),                               # optuna draws 110 at most
    ("strategy.channel=10..200", "strategy.window=100..300"),       # 200 runs with a window of 300
])
def test_ranges_that_can_run_are_let_through(base, search: tuple[str, ...]) -> None:
    """The negative case: every end runs with some value of the others."""
    Sweep(study(*search), base)


def test_a_trial_the_strategy_refused_is_told_to_optuna_as_pruned() -> None:
    """FAIL, as before, the TPE sampler leaves out: it drew refused values again."""
    sampler = optuna.create_study(direction="maximize")
    trial = sampler.ask()
    refused = TrialResult(1, {"strategy.window": 60}, None, error=RULE, refused=True)
    _tell(sampler, trial, refused, "sharpe", optuna)
    assert sampler.trials[0].state == optuna.trial.TrialState.PRUNED


def test_the_reviews_study_is_refused_with_exit_2(tmp_path) -> None:
    result = run_sweep(tmp_path, *SLICE, "--search", "strategy.channel=10..200:10",
                       "--trials", "8", "--seed", "3", "--no-progress")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"sweep error: strategy.channel=200 (an end of its range 10..200): {RULE}; narrow it, "
        "or change the other parameters"]
    assert not (tmp_path / "out").exists()


def test_combinations_the_strategy_refuses_are_failed_rows_and_the_sweep_goes_on(tmp_path) -> None:
    """window 60 with channel 120 is refused; each value runs with the other's other value."""
    result = run_sweep(tmp_path, *SLICE, "--search", "strategy.window=60,130", "--search",
                       "strategy.channel=20,120", "--trials", "6", "--seed", "1",
                       "--workers", "2", "--no-progress", "--run-id", "mixed")
    assert result.returncode == 0, result.stderr
    rows = read_rows(tmp_path / "out" / "mixed" / "results.csv")
    for row in rows:
        refused = (row["strategy.window"], row["strategy.channel"]) == ("60", "120")
        assert row["status"] == ("failed" if refused else "ok" if row["trades"] != "0"
                                 else "no trade"), row
        assert (RULE in row["error"]) == refused
