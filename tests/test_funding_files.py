"""`--funding` takes Binance's own funding files as downloaded (data.binance.vision's monthly
fundingRate CSVs: calc_time,funding_interval_hours,last_funding_rate), and a symbol's
several files joined into one schedule, as `--data` joins its candle files. Binance's layout
was refused for missing funding_time,funding_rate (the bundled files' layout, still read),
and a second file of one symbol replaced the first without a word."""

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_backtest_funding_notes import funding_notes
from tests.test_backtest_several_files import candle_file
from tests.test_cli import backtest, report_of
from trader.backtest_data import funding_files
from trader.domain import utc
from trader.market.funding_csv import load_funding

BINANCE = "calc_time,funding_interval_hours,last_funding_rate\n"
BUNDLED = "funding_time,funding_rate\n"
# 2021-11-15 00:00, 08:00, 16:00 and 2021-11-16 00:00, 08:00 UTC, a few ms late as Binance
# stamps them
TIMES = [1636934400017, 1636963200004, 1636992000009, 1637020800002, 1637049600012]
RATES = ["0.00300000", "-0.00100000", "0.00200000", "0.00050000", "0.00010000"]


def rates_file(path: Path, header: str, rows: list[int]) -> Path:
    binance = header == BINANCE
    path.write_text(header + "".join(
        f"{TIMES[i]},8,{RATES[i]}\n" if binance else f"{TIMES[i]},{RATES[i]}\n" for i in rows))
    return path


def schedule(rows: list[int]) -> list[tuple[datetime, Decimal]]:
    return [(utc(TIMES[i]), Decimal(RATES[i])) for i in rows]


def test_binances_funding_file_is_read(tmp_path: Path) -> None:
    path = rates_file(tmp_path / "ETHUSDT-fundingRate-2021-11.csv", BINANCE, [0, 1, 2])
    assert load_funding(path) == schedule([0, 1, 2])


def test_a_symbols_funding_files_are_joined_in_time_order(tmp_path: Path) -> None:
    later = rates_file(tmp_path / "ETHUSDT-fundingRate-2021-11-b.csv", BINANCE, [2, 3, 4])
    earlier = rates_file(tmp_path / "ETHUSDT-fundingRate-2021-11-a.csv", BUNDLED, [0, 1, 2])
    joined = funding_files([later, earlier], {"ETHUSDT": []})
    assert joined == {"ETHUSDT": schedule([0, 1, 2, 3, 4])}       # 2: held by both, once


def test_a_funding_time_two_files_give_different_rates_is_refused(tmp_path: Path) -> None:
    first = rates_file(tmp_path / "ETHUSDT-fundingRate-a.csv", BINANCE, [0, 1])
    second = tmp_path / "ETHUSDT-fundingRate-b.csv"
    second.write_text(f"{BINANCE}{TIMES[1]},8,0.00099000\n")
    with pytest.raises(ValueError) as caught:
        funding_files([first, second], {"ETHUSDT": []})
    assert str(caught.value) == (
        f"{second}: line 2: funding rate 0.00099000 at 2021-11-15 08:00:00 UTC, but line 3 of "
        f"{first} has -0.00100000 for that time: which is right?")


def test_a_file_of_neither_layout_names_both(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT-fundingRate-2021-11.csv"
    path.write_text("time,rate\n1636934400017,0.0001\n")
    with pytest.raises(ValueError) as caught:
        load_funding(path)
    assert str(caught.value) == (
        f"{path}: line 1: missing column(s) funding_time, funding_rate (expected the header line "
        "funding_time,funding_rate, or Binance's calc_time,funding_interval_hours,"
        "last_funding_rate)")


def test_a_backtest_pays_the_joined_files_rates(tmp_path: Path) -> None:
    data = candle_file(tmp_path, "ETHUSDT-5m.csv", rows=2000)      # trades across funding times
    (tmp_path / "one").mkdir()
    one = rates_file(tmp_path / "one" / "ETHUSDT-funding.csv", BUNDLED, [0, 1, 2, 3, 4])
    first = rates_file(tmp_path / "ETHUSDT-fundingRate-2021-11-a.csv", BINANCE, [0, 1, 2])
    second = rates_file(tmp_path / "ETHUSDT-fundingRate-2021-11-b.csv", BINANCE, [3, 4])
    single = backtest(tmp_path, "--data", str(data), "--funding", str(one), "--run-id", "one")
    joined = backtest(tmp_path, "--data", str(data), "--funding", str(second), str(first),
                      "--run-id", "joined")
    assert single.returncode == 0 and joined.returncode == 0, joined.stderr
    assert funding_notes(tmp_path, "joined") == [
        "funding: ETHUSDT from a funding file (rates 2021-11-15 00:00 to 2021-11-16 08:00 UTC; "
        "before the first, the assumed 0.01 % per 8 h)"]
    paid = [report_of(tmp_path, run)["performance"]["funding"] for run in ("one", "joined")]
    assert paid[0] == paid[1]
