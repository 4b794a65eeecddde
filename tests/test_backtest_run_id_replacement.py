"""`tradebot backtest --run-id NAME` replaces an earlier run of that name only once the new
one has succeeded: it writes into a staging folder beside out/NAME and swaps it in at the
end, so a run that fails leaves the earlier run as it was (it used to empty out/NAME first,
and a failure then left nothing of either)."""

import json
from pathlib import Path

import pytest

import trader.backtest_cli as backtest_cli
from tests.test_backtest_input import xrp_file
from trader.backtest_input import BacktestError
from trader.cli import main


def run(tmp_path: Path, data: Path, run_id: str = "nightly") -> int:
    return main(["backtest", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--run-id", run_id, "--no-progress"])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return xrp_file(tmp_path)


def test_a_failed_run_leaves_the_earlier_run_of_its_id_as_it_was(tmp_path, data, monkeypatch):
    assert run(tmp_path, data) == 0
    folder = tmp_path / "out" / "nightly"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert "report.json" in before

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise BacktestError("the strategy raised")
    monkeypatch.setattr(backtest_cli, "run_groups", failing)
    assert run(tmp_path, data) == 2
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before
    assert (folder / "databases").is_dir()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nightly"]   # no staging left


def test_a_successful_run_replaces_the_earlier_one_and_names_its_final_files(
        tmp_path, data, capsys):
    assert run(tmp_path, data) == 0
    folder = tmp_path / "out" / "nightly"
    (folder / "trades.csv").write_text("the earlier run's\n")
    assert run(tmp_path, data) == 0
    captured = capsys.readouterr()
    assert "replaced the earlier run nightly" in captured.err, captured.err
    assert (folder / "trades.csv").read_text() != "the earlier run's\n"
    assert json.loads((folder / "report.json").read_text())["candles"] == 300
    text = (folder / "report.txt").read_text()
    assert f"Files in {folder}/" in text and ".partial" not in text, text
    assert f"Files in {folder}/" in captured.out and ".partial" not in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nightly"]


def test_a_folder_of_other_files_is_refused_before_the_run(tmp_path, data, capsys):
    folder = tmp_path / "out" / "nightly"
    folder.mkdir(parents=True)
    (folder / "notes.md").write_text("mine")
    assert run(tmp_path, data) == 2
    assert "holds files that are not a tradebot run's" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["notes.md"]


def failing_groups(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise BacktestError("the strategy raised")


def test_a_failed_first_run_leaves_nothing_and_the_next_replaces_nothing(
        tmp_path, data, monkeypatch, capsys):
    """It used to leave out/nightly/databases/ (written before the failure, straight into the
    run's folder), which the next run then "replaced" as an earlier run."""
    real_groups = backtest_cli.run_groups

    def fail_after_writing(settings, groups, folder, **kwargs):  # type: ignore[no-untyped-def]
        real_groups(settings, groups, folder, **kwargs)          # the databases are written
        raise BacktestError("the strategy raised")
    monkeypatch.setattr(backtest_cli, "run_groups", fail_after_writing)
    assert run(tmp_path, data) == 2
    assert not (tmp_path / "out" / "nightly").exists()
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.setattr(backtest_cli, "run_groups", real_groups)
    capsys.readouterr()
    assert run(tmp_path, data) == 0
    assert "replaced" not in capsys.readouterr().err


def test_a_failed_run_without_a_run_id_leaves_nothing(tmp_path, data, monkeypatch):
    monkeypatch.setattr(backtest_cli, "run_groups", failing_groups)
    assert main(["backtest", "--data", str(data), "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 2
    assert list((tmp_path / "out").iterdir()) == []


def test_a_kept_run_names_its_databases_in_its_final_folder(tmp_path, data):
    assert run(tmp_path, data) == 0
    folder = tmp_path / "out" / "nightly"
    database = json.loads((folder / "report.json").read_text())["extra"]["database"]
    assert database == str(folder / "databases" / "XRPUSDT" / "backtest.db")
    assert Path(database).is_file()
