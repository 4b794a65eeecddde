"""A sweep re-run under the --run-id of a finished one (h-review13): interrupted before any
trial finished, it replaced the finished run ("replaced the earlier run rr"), leaving a
header-only results.csv and no pictures. An interrupted run now never replaces a finished
one: its results so far go beside it, into out/<run-id>-interrupted, and it says so."""

import signal
from pathlib import Path

import pytest

from trader.cli import main
from trader.sweep import Sweep
from trader.sweep_signals import SweepInterrupted
from trader.sweep_trial import TrialResult

ARGS = ["sweep", "--symbols", "XRPUSDT", "--grid", "strategy.channel=20,30", "--no-progress",
        "--run-id", "rr", "--from", "2021-11-16", "--to", "2021-11-16"]


def finishing(self: Sweep, runner, board, *, progress: bool = True) -> None:  # type: ignore[no-untyped-def]
    for number, channel in enumerate((20, 30)):
        board.add(TrialResult(number, {"strategy.channel": channel}, None, error="RuntimeError: x"))


def interrupted(self: Sweep, runner, board, *, progress: bool = True) -> None:  # type: ignore[no-untyped-def]
    raise SweepInterrupted(signal.SIGINT)


def sweep(out: Path, monkeypatch: pytest.MonkeyPatch, run) -> int:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(Sweep, "run", run)   # no trial process: the folders are the point
    return main([*ARGS, "--out", str(out)])


def test_an_interrupted_rerun_keeps_the_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(tmp_path, monkeypatch, finishing) == 1        # every (fake) trial failed
    finished = (tmp_path / "rr" / "results.csv").read_text()
    assert len(finished.splitlines()) == 3
    capsys.readouterr()
    assert sweep(tmp_path, monkeypatch, interrupted) == 130
    err = capsys.readouterr().err
    assert "replaced the earlier run" not in err
    assert (tmp_path / "rr" / "results.csv").read_text() == finished
    beside = tmp_path / "rr-interrupted" / "results.csv"
    assert err.splitlines()[-1] == (
        f"interrupted after 0 of 2 trials; results so far in {beside} (the finished run in "
        f"{tmp_path / 'rr'} is kept)")
    assert len(beside.read_text().splitlines()) == 1
    assert sweep(tmp_path, monkeypatch, interrupted) == 130    # again: the same place
    assert (tmp_path / "rr" / "results.csv").read_text() == finished
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rr", "rr-interrupted"]


def test_an_interrupted_first_run_is_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Negative: with no earlier run of the id, an interrupted sweep's results so far are
    out/<run-id> itself, as before."""
    assert sweep(tmp_path, monkeypatch, interrupted) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted after 0 of 2 trials; results so far in {tmp_path / 'rr' / 'results.csv'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rr"]
