"""A Ray sweep of a --data file given by a relative path: the file is shipped as its path
(not its rows: a long file streams), and Ray workers run in a folder of their own, so every
trial failed with "No such file or directory" (review4). The path is made absolute before
it is shipped."""

import pickle
import shutil
from pathlib import Path

from tests.interrupt_support import BUNDLED
from tests.ray_support import LOCAL_RAY
from tests.test_sweep import read_rows, run_sweep
from trader.market.replay import CandleFile, load_bundled
from trader.sweep_runners import anchored
from trader.sweep_trial import BacktestData


def test_a_relative_data_path_is_shipped_absolute(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(BUNDLED, tmp_path / "XRPUSDT-5m.csv")
    monkeypatch.chdir(tmp_path)
    given = CandleFile(Path("XRPUSDT-5m.csv"))
    shipped = pickle.loads(pickle.dumps(anchored(BacktestData({"XRPUSDT": given}))))
    assert shipped.candles["XRPUSDT"].path == tmp_path / "XRPUSDT-5m.csv"
    assert given.path == Path("XRPUSDT-5m.csv"), "messages here keep the path as given"
    monkeypatch.chdir("/")
    assert len(list(shipped.candles["XRPUSDT"])) == len(given)


def test_absolute_paths_and_bundled_rows_are_shipped_as_they_are(tmp_path: Path) -> None:
    """The negative case: nothing to anchor."""
    bundled = load_bundled()
    absolute = CandleFile(shutil.copy(BUNDLED, tmp_path / "XRPUSDT-5m.csv"))
    shipped = anchored(BacktestData({"XRPUSDT": absolute, "BTCUSDT": bundled["BTCUSDT"]}))
    assert shipped.candles["XRPUSDT"] is absolute
    assert shipped.candles["BTCUSDT"] is bundled["BTCUSDT"]


def test_a_ray_sweep_runs_a_data_file_given_by_a_relative_path(ray_address: str,
                                                               tmp_path: Path) -> None:
    shutil.copy(BUNDLED, tmp_path / "XRPUSDT-5m.csv")
    result = run_sweep(tmp_path, "--data", "XRPUSDT-5m.csv", "--to", "2021-11-16", "--grid",
                       "strategy.channel=20,30", "--no-progress", "--run-id", "relative",
                       RAY_ADDRESS=ray_address, **LOCAL_RAY)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_rows(tmp_path / "out" / "relative" / "results.csv")
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert "ran on Ray at 127.0.0.1" in result.stdout
