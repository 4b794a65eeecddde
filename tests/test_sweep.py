"""`tradebot sweep` as a user runs it: a grid or an optuna study of full backtests on a slice
of the bundled candles, in local processes or as Ray tasks; the table, results.csv and the
best trials' equity pictures."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray_support import LOCAL_RAY

SLICE = ("--symbols", "XRPUSDT", "--from", "2021-11-16", "--to", "2021-11-17")
GRID = ("--grid", "strategy.channel=20,30", "--grid", "TRADEBOT_RISK_BASE=0.01,0.02")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_sweep(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m trader sweep ARGS` with only PATH, HOME, PYTHONPATH and the given
    variables set (a PYTHONPATH given is put before the inherited one)."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
             "PYTHONDONTWRITEBYTECODE": "1", "RAY_USAGE_STATS_ENABLED": "0", **env}
    inherited = os.environ.get("PYTHONPATH")
    if inherited:
        clean["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), inherited]))
    return subprocess.run([sys.executable, "-m", "trader", "sweep", *args], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=300, check=False)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def trial_outcomes(rows: list[dict[str, str]]) -> dict[str, tuple[str, ...]]:
    """trial -> (its parameters and results), to compare two runs of the same trials."""
    columns = ("strategy.channel", "TRADEBOT_RISK_BASE", "trades", "net_pnl", "sharpe",
               "max_drawdown_pct")
    return {row["trial"]: tuple(row[column] for column in columns) for row in rows}


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One 4-trial grid sweep in two local processes, shared by the tests that read it."""
    cwd = tmp_path_factory.mktemp("local-grid")
    result = run_sweep(cwd, *SLICE, *GRID, "--top", "2", "--workers", "2", "--run-id", "grid")
    return result, cwd / "out" / "grid"


def test_a_grid_sweep_prints_the_ranked_table(local_grid) -> None:
    result, _ = local_grid
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Sweep: 4 trials (grid) over XRPUSDT")
    assert "ran on 2 local processes" in lines[1] and "ranked by sharpe" in lines[1]
    header = lines[2].split()
    assert header[:4] == ["#", "trial", "strategy.channel", "TRADEBOT_RISK_BASE"]
    assert {"trades", "Sharpe", "PnL", "DD", "%"} <= set(header)
    ranks = [line.split()[0] for line in lines[3:7]]
    assert ranks == ["1", "2", "3", "4"]
    assert header[-3:] == ["Sharpe", "Sortino", "PF"]
    sharpe = [float(line.split()[-3]) for line in lines[3:7]]
    assert sharpe == sorted(sharpe, reverse=True)


def test_a_grid_sweep_writes_every_trial_to_the_csv_best_first(local_grid) -> None:
    result, out = local_grid
    assert result.returncode == 0, result.stderr
    rows = read_rows(out / "results.csv")
    assert {(row["strategy.channel"], row["TRADEBOT_RISK_BASE"]) for row in rows} == \
        {("20", "0.01"), ("20", "0.02"), ("30", "0.01"), ("30", "0.02")}
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    assert all(row["status"] == "ok" and row["error"] == "" for row in rows)
    objective = [float(row["objective_sharpe"]) for row in rows]
    assert objective == sorted(objective, reverse=True)
    assert all(int(row["trades"]) > 0 for row in rows), "the slice has breakouts to trade"
    # risk per trade really reaches the engine: double the risk, bigger losses and gains
    by_params = {(row["strategy.channel"], row["TRADEBOT_RISK_BASE"]): row for row in rows}
    for channel in ("20", "30"):
        small, large = by_params[(channel, "0.01")], by_params[(channel, "0.02")]
        assert small["trades"] == large["trades"]
        assert abs(float(large["net_pnl"])) > abs(float(small["net_pnl"]))


def test_a_grid_sweep_draws_the_best_trials_equity(local_grid) -> None:
    result, out = local_grid
    assert result.returncode == 0, result.stderr
    best = read_rows(out / "results.csv")[:2]
    pictures = sorted(out.glob("*.png"))
    assert [picture.name for picture in pictures] == \
        [f"equity-{rank}-trial-{row['trial']}.png" for rank, row in enumerate(best, start=1)]
    for picture in pictures:
        assert picture.read_bytes().startswith(PNG_MAGIC)
        assert str(picture.relative_to(out.parent.parent)) in result.stdout


@pytest.mark.parametrize(("grid", "message"), [
    ("TRADEBOT_RISK_BASE=0.01,0.5",
     "TRADEBOT_RISK_BASE: Input should be less than or equal to 0.03 (got 0.5); allowed: more "
     "than 0, at most 0.03"),
    ("strategy.channel=20,-5", "strategy.channel=-5: must be at least 1"),
    ("TRADEBOT_LEVERAG=3", "unknown parameter 'TRADEBOT_LEVERAG': did you mean "
                           "TRADEBOT_LEVERAGE? (a setting, see .env.example, or strategy.FIELD)"),
])
def test_a_bad_parameter_stops_the_sweep_before_any_trial(tmp_path: Path, grid: str,
                                                          message: str) -> None:
    result = run_sweep(tmp_path, *SLICE, "--grid", grid, "--run-id", "bad")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"sweep error: {message}"]
    assert not (tmp_path / "out").exists()


def test_the_bundled_data_needs_one_period(tmp_path: Path) -> None:
    result = run_sweep(tmp_path, "--grid", "strategy.channel=20,30")
    assert result.returncode == 2
    assert "do not overlap" in result.stderr and "--symbols" in result.stderr


def test_an_optuna_study_with_a_seed_runs_the_same_trials_again(tmp_path: Path) -> None:
    pytest.importorskip("optuna", reason="optuna is an optional extra: pip install '.[optuna]'")
    search = ("--search", "strategy.channel=10..40:5", "--search",
              "TRADEBOT_RISK_BASE=0.005..0.03:log", "--trials", "3", "--seed", "11",
              "--workers", "2", "--no-progress")
    first = run_sweep(tmp_path, *SLICE, *search, "--run-id", "first")
    again = run_sweep(tmp_path, *SLICE, *search, "--run-id", "again")
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert "Sweep: 3 trials (optuna)" in first.stdout
    rows = read_rows(tmp_path / "out" / "first" / "results.csv")
    assert len(rows) == 3 and all(row["status"] == "ok" for row in rows)
    for row in rows:
        assert 10 <= int(row["strategy.channel"]) <= 40 and int(row["strategy.channel"]) % 5 == 0
        assert 0.005 <= float(row["TRADEBOT_RISK_BASE"]) <= 0.03
    assert trial_outcomes(rows) == trial_outcomes(read_rows(tmp_path / "out" / "again" / "results.csv"))


RAISES = """
class Raises:
    name, warmup = "raises", 5

    def signal(self, closed):
        if len(closed) > 100:
            raise ZeroDivisionError("boom in my strategy")
        return None
"""


def test_a_sweep_in_which_every_trial_failed_exits_1(tmp_path: Path) -> None:
    """Each failure is listed and the sweep goes on; with no finished trial, exit 1.
    (It used choices the strategy refuses together, strategy.window=40,41: refused before
    the sweep now, tests/test_sweep_optuna_rules.py.)"""
    (tmp_path / "raising.py").write_text(RAISES, encoding="utf-8")
    result = run_sweep(tmp_path, *SLICE, "--grid", "TRADEBOT_SEED=1,2", "--no-progress",
                       "--run-id", "failed", PYTHONPATH=str(tmp_path),
                       TRADEBOT_STRATEGY="raising:Raises")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2
    assert all("ZeroDivisionError: boom in my strategy" in line for line in failed)
    rows = read_rows(tmp_path / "out" / "failed" / "results.csv")
    assert [row["status"] for row in rows] == ["failed", "failed"]


def test_ray_address_without_ray_installed_says_how_to_fix_it(tmp_path: Path) -> None:
    shadow = tmp_path / "no-ray"
    (shadow / "ray").mkdir(parents=True)   # an importable `ray` that fails like a missing one
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = run_sweep(tmp_path, *SLICE, *GRID, RAY_ADDRESS="127.0.0.1:6379",
                       PYTHONPATH=str(shadow))
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and "RAY_ADDRESS" in message[0]
    assert "pip install 'tradebot[ray]'" in message[0]
    assert not (tmp_path / "out").exists()


def test_with_ray_address_the_trials_run_as_ray_tasks(local_grid, tmp_path: Path,
                                                      ray_address: str) -> None:
    result = run_sweep(tmp_path, *SLICE, *GRID, "--top", "2", "--run-id", "ray",
                       RAY_ADDRESS=ray_address, **LOCAL_RAY)
    assert result.returncode == 0, result.stderr
    assert "ran on Ray at 127.0.0.1" in result.stdout and "(2 CPUs)" in result.stdout
    rows = read_rows(tmp_path / "out" / "ray" / "results.csv")
    _, local_out = local_grid
    assert trial_outcomes(rows) == trial_outcomes(read_rows(local_out / "results.csv")), \
        "the same trials give the same results wherever they run"
    assert len(list((tmp_path / "out" / "ray").glob("equity-*.png"))) == 2


def test_the_sweep_header_gives_its_period_as_the_backtest_report_does() -> None:
    """First to last candle close, as `tradebot backtest` prints it (it gave open times)."""
    from trader.market.replay import load_bundled
    from trader.sweep_cli import _period
    xrp = [c for c in load_bundled()["XRPUSDT"] if c.open_time.day == 16]
    assert _period({"XRPUSDT": xrp}) == "2021-11-16 00:05 -> 2021-11-17 00:00 UTC"
