"""`tradebot sweep` details a user meets at once: a value given twice runs once (with a note
saying so), --workers below 1 is refused naming the option, and the progress bar counts
finished trials against the real total, with an estimate of the time left."""

import re
from pathlib import Path

import pytest

from tests.test_sweep import SLICE, read_rows, run_sweep
from trader.config import load_settings
from trader.sweep import Sweep
from trader.sweep_spec import SweepSpec, with_options


def test_a_repeated_grid_value_runs_once_and_a_note_says_so() -> None:
    spec = with_options(SweepSpec(), grid=["strategy.channel=20,30,20,20",
                                           "strategy.sl_atr=1.5,1.50,2"], search=[])
    distinct, notes = spec.without_repeats()
    assert distinct.grid == {"strategy.channel": (20, 30), "strategy.sl_atr": (1.5, 2)}
    assert distinct.trial_count == 4
    assert notes == ["strategy.channel: 20 repeated; each value runs once (2 values, not 4)",
                     "strategy.sl_atr: 1.5 repeated; each value runs once (2 values, not 3)"]


def test_values_that_only_look_alike_are_kept_apart() -> None:
    spec = SweepSpec(grid={"TRADEBOT_ADOPT_POSITIONS": (True, 1, "1")})
    distinct, notes = spec.without_repeats()
    assert distinct.grid == spec.grid and notes == []


def test_a_sweep_built_in_code_does_not_run_a_repeated_value_twice() -> None:
    spec = SweepSpec(grid={"strategy.channel": (20, 30, 20)})
    sweep = Sweep(spec, load_settings(_env_file=None))
    assert sweep.spec.trial_count == 2
    assert [plan.params for plan in sweep._grid_plans] == [{"strategy.channel": 20},
                                                           {"strategy.channel": 30}]


def test_optuna_choices_are_listed_once_each() -> None:
    spec = with_options(SweepSpec(), grid=[], search=["TRADEBOT_LEVERAGE=3,5,3"])
    distinct, notes = spec.without_repeats()
    assert distinct.search == {"TRADEBOT_LEVERAGE": (3, 5)}
    assert len(notes) == 1 and notes[0].startswith("TRADEBOT_LEVERAGE: 3 repeated")


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_are_refused_naming_the_option(tmp_path: Path, workers: str) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.channel=20,30",
                       "--workers", workers, "--run-id", "w")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sweep error: --workers {workers}: trials at once must be at least 1"]
    assert not (tmp_path / "out").exists()


def test_negative_rows_are_refused_naming_the_option(tmp_path: Path) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.channel=20,30", "--rows", "-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["sweep error: --rows -1: must be 0 or more"]


def test_a_repeated_value_runs_once_and_the_bar_counts_trials_with_time_left(
        tmp_path: Path) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.channel=20,20,30",
                       "--workers", "1", "--run-id", "dup")
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if "sweep note:" in line]
    assert notes == ["sweep note: strategy.channel: 20 repeated; each value runs once "
                     "(2 values, not 3)"]
    assert result.stdout.startswith("Sweep: 2 trials (grid)")
    rows = read_rows(tmp_path / "out" / "dup" / "results.csv")
    assert sorted(row["strategy.channel"] for row in rows) == ["20", "30"]
    # stderr is a pipe here: plain lines (trader/sweep_progress.py), no bar redrawn
    progress = [line for line in result.stderr.splitlines() if line.startswith("sweep: ")]
    assert "\r" not in result.stderr
    assert progress[0] == "sweep: 2 trials, 1 at once; a line every 10%", progress
    assert re.match(r"sweep: 1/2 trials \(50%\), \d\d:\d\d elapsed, about \d\d:\d\d left",
                    progress[1]), progress
    assert re.match(r"sweep: 2/2 trials \(100%\), \d\d:\d\d elapsed, about 00:00 left",
                    progress[2]), progress


def test_one_value_left_is_said_in_the_singular() -> None:
    spec = with_options(SweepSpec(), grid=["strategy.channel=20,20,20"], search=[])
    _, notes = spec.without_repeats()
    assert notes == ["strategy.channel: 20 repeated; each value runs once (1 value, not 3)"]


def test_a_single_trial_is_one_trial_run_on_one_process(tmp_path: Path) -> None:
    """A sweep of one trial said "Sweep: 1 trials" and "ran on 2 local processes": no more
    processes are started than there are trials, and the count reads in the singular."""
    result = run_sweep(tmp_path, *SLICE, "--grid", "strategy.channel=20", "--workers", "2",
                       "--run-id", "one")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Sweep: 1 trial (grid) over XRPUSDT"), lines[0]
    assert "ran on 1 local process in" in lines[1], lines[1]
    progress = [line for line in result.stderr.splitlines() if line.startswith("sweep: ")]
    assert progress[0].startswith("sweep: 1 trial, 1 at once"), progress
