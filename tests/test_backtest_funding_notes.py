"""Where a backtest's funding comes from, said in report.txt's Notes and report.json's
notes: a symbol without a funding file pays an assumed flat rate (SimConfig.funding_rate),
which the "Funding" figure would otherwise show as if measured; `--funding FILE` gives a
symbol Binance's rates (the bundled trader/data/XRPUSDT-funding-8h.csv format)."""

import zipfile
from pathlib import Path

from tests.test_backtest_input import one_error_line
from tests.test_backtest_several_files import candle_file
from tests.test_cli import backtest, report_of

ASSUMED_ETH = ("funding: ETHUSDT at an assumed flat 0.01 % per 8 h (no funding file for it; "
               "--funding FILE gives its real rates)")


def funding_notes(folder: Path, run_id: str) -> list[str]:
    return [note for note in report_of(folder, run_id)["notes"] if note.startswith("funding")]


def test_a_data_file_without_funding_says_its_funding_is_assumed(tmp_path: Path) -> None:
    data = candle_file(tmp_path, "ETHUSDT-5m.csv")
    result = backtest(tmp_path, "--data", str(data), "--run-id", "eth")
    assert result.returncode == 0, result.stderr
    assert funding_notes(tmp_path, "eth") == [ASSUMED_ETH]
    assert ASSUMED_ETH in (tmp_path / "out" / "eth" / "report.txt").read_text()


def test_a_funding_file_is_used_and_said(tmp_path: Path) -> None:
    data = candle_file(tmp_path, "ETHUSDT-5m.csv", rows=2000)     # trades across funding times
    rates = tmp_path / "ETHUSDT-funding-8h.csv"
    # 2021-11-15 00:00 and 08:00 UTC (ms, a few ms late as Binance stamps them)
    rates.write_text("funding_time,funding_rate\n1636934400017,0.003\n1636963200004,0.003\n")
    assumed = backtest(tmp_path, "--data", str(data), "--run-id", "assumed")
    measured = backtest(tmp_path, "--data", str(data), "--funding", str(rates), "--run-id", "file")
    assert assumed.returncode == 0 and measured.returncode == 0, measured.stderr
    assert funding_notes(tmp_path, "file") == [
        "funding: ETHUSDT from a funding file (rates 2021-11-15 00:00 to 2021-11-15 08:00 UTC; "
        "before the first, the assumed 0.01 % per 8 h)"]
    paid = [report_of(tmp_path, run)["performance"]["funding"] for run in ("assumed", "file")]
    assert paid[0] != paid[1]


def test_the_bundled_data_says_which_symbol_has_real_funding(tmp_path: Path) -> None:
    result = backtest(tmp_path, "--run-id", "bundled")
    assert result.returncode == 0, result.stderr
    assert funding_notes(tmp_path, "bundled") == [
        "funding: BTCUSDT at an assumed flat 0.01 % per 8 h (no funding file for it; "
        "--funding FILE gives its real rates)",
        "funding: XRPUSDT from a funding file (rates 2021-11-18 00:00 to 2021-12-18 00:00 UTC; "
        "before the first, the assumed 0.01 % per 8 h)"]


def test_a_funding_file_for_no_symbol_of_the_data_is_refused(tmp_path: Path) -> None:
    data = candle_file(tmp_path, "ETHUSDT-5m.csv")
    rates = tmp_path / "SOLUSDT-funding-8h.csv"
    rates.write_text("funding_time,funding_rate\n1636934400017,0.003\n")
    assert one_error_line(backtest(tmp_path, "--data", str(data), "--funding", str(rates))) == (
        f"backtest error: --funding {rates}: SOLUSDT is not a symbol of the run (ETHUSDT)")
    unnamed = tmp_path / "rates.csv"
    unnamed.write_text("funding_time,funding_rate\n1636934400017,0.003\n")
    assert one_error_line(backtest(tmp_path, "--data", str(data), "--funding", str(unnamed))) == (
        f"backtest error: --funding {unnamed}: the file name does not say the symbol; name it "
        "like ETHUSDT-funding-8h.csv")


def test_a_sweep_takes_funding_files_as_a_backtest_does(tmp_path: Path) -> None:
    """`tradebot sweep --funding FILE`: every trial pays the file's rates (the option was
    the backtest's alone: a sweep over --data files ran on the assumed rate)."""
    from trader.cli import build_parser
    from trader.config import load_settings
    from trader.sweep_cli import load_sweep_data
    data = candle_file(tmp_path, "ETHUSDT-5m.csv")
    rates = tmp_path / "ETHUSDT-funding-8h.csv"
    rates.write_text("funding_time,funding_rate\n1636934400017,0.003\n1636963200004,0.003\n")
    args = build_parser().parse_args(["sweep", "--data", str(data), "--funding", str(rates),
                                      "--grid", "strategy.channel=20,30"])
    loaded = load_sweep_data(load_settings(_env_file=None), args)
    assert loaded.funding is not None and "ETHUSDT" in loaded.funding


def test_a_funding_file_that_cannot_be_read_is_named_as_funding(tmp_path: Path) -> None:
    """A missing, a directory or a zipped --funding path says what it is as --data's do (it
    said "cannot read candles (... No such file or directory ...)" of a funding file)."""
    data = candle_file(tmp_path, "ETHUSDT-5m.csv")
    missing = tmp_path / "ETHUSDT-funding-8h.csv"
    assert one_error_line(backtest(tmp_path, "--data", str(data), "--funding", str(missing))) == (
        f"backtest error: --funding {missing}: no such file")
    folder = tmp_path / "ETHUSDT-funding"
    folder.mkdir()
    assert one_error_line(backtest(tmp_path, "--data", str(data), "--funding", str(folder))) == (
        f"backtest error: --funding {folder}: is a directory, not a funding CSV file")
    zipped = tmp_path / "ETHUSDT-fundingRate-2024-01.csv"      # data.binance.vision's, unzipped not
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ETHUSDT-fundingRate-2024-01.csv",
                         "calc_time,funding_interval_hours,last_funding_rate\n"
                         "1704067200000,8,0.00037409\n" * 50)
    error = one_error_line(backtest(tmp_path, "--data", str(data), "--funding", str(zipped)))
    assert error.startswith(f"backtest error: {zipped}: cannot read funding rates: the file "
                            "is a zip archive"), error
