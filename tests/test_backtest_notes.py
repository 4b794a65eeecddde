"""A backtest whose result is empty or meaningless says why (fresh-user pass 2, #6 and #12):
a warmup longer than the data, prices too small for the symbol's tick, a symbol that never
entered (with the refusals' reason), a symbol without trades still in "By symbol", and a
reused --run-id that replaces the earlier run instead of mixing with it."""

import re
import subprocess
from pathlib import Path

from tests.test_backtest_input import HEADER, xrp_file
from tests.test_cli import XRP_DAY, backtest, report_of, xrp_rows

STRATEGIES = '''
class BigWarmup:
    name, warmup = "big-warmup", 100000
    def signal(self, closed):
        return None

class Silent:
    name, warmup = "silent", 10
    def signal(self, closed):
        return None
'''


def with_strategies(folder: Path) -> Path:
    (folder / "mystrategies").mkdir()
    (folder / "mystrategies" / "quiet.py").write_text(STRATEGIES)
    return folder


def finished(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result


def notes_of(folder: Path, run_id: str) -> list[str]:
    """The report.txt's "Notes" section, one line per note."""
    text = (folder / "out" / run_id / "report.txt").read_text()
    section = text.split("\nNotes\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in section.splitlines()]


def table_row(stdout: str, symbol: str) -> list[str]:
    table = stdout.split("By symbol (USDT)\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines() if line.split()[:1] == [symbol]]
    assert len(rows) == 1, table
    return rows[0]


def test_a_warmup_longer_than_the_data_is_said_on_stderr_and_in_the_report(
        tmp_path: Path) -> None:
    folder = with_strategies(tmp_path)
    result = finished(backtest(folder, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "warm",
                               TRADEBOT_STRATEGY="mystrategies.quiet:BigWarmup"))
    candles = report_of(folder, "warm")["candles"]
    note = (f"XRPUSDT: {candles:,} candles (and 288 before --from) but the strategy needs "
            "100,000 closed candles before its first signal: no trade possible")
    warm_up = ("warm-up: XRPUSDT: 288 of 100,000 candles before 2021-11-16 00:00 UTC in the "
               "data; the whole window warms up: no trade possible")
    for line in (note, warm_up):
        assert line in result.stderr.splitlines()
        assert line in notes_of(folder, "warm")
    assert table_row(result.stdout, "XRPUSDT")[:2] == ["XRPUSDT", "0"]
    assert [row["label"] for row in report_of(folder, "warm")["per_symbol"]] == [
        "XRPUSDT", "TOTAL"]


def test_a_two_row_file_says_the_strategy_needs_more_candles(tmp_path: Path) -> None:
    data = xrp_file(tmp_path, rows=2)
    result = finished(backtest(tmp_path, "--data", str(data), "--run-id", "short"))
    assert re.search(r"^XRPUSDT: 2 candles but the strategy needs \d+ closed candles before "
                     "its first signal: no trade possible$", result.stderr, re.MULTILINE), \
        result.stderr


def test_prices_below_100_ticks_of_the_symbol_are_questioned(tmp_path: Path) -> None:
    data = xrp_file(tmp_path, name="ETHUSDT-5m.csv", rows=600)   # XRP prices, ETH's 0.01 tick
    result = finished(backtest(tmp_path, "--data", str(data), "--run-id", "eth"))
    note = "ETHUSDT: prices around 1.1 with a tick of 0.01: is this the right symbol?"
    assert note in result.stderr.splitlines()
    assert note in notes_of(tmp_path, "eth")
    clean = finished(backtest(tmp_path, "--data", str(xrp_file(tmp_path, rows=600)),
                              "--run-id", "xrp"))
    assert "is this the right symbol" not in clean.stderr


def test_a_symbol_that_never_entered_says_why_and_keeps_its_row(tmp_path: Path) -> None:
    rows = [line.split(",") for line in xrp_rows(600, 1000)]
    tiny = [",".join([row[0], *(f"{float(value) * 1e-6:.10f}" for value in row[1:5]), row[5]])
            for row in rows]
    data = tmp_path / "TINYUSDT-5m.csv"
    data.write_text(HEADER + "\n".join(tiny) + "\n")
    result = finished(backtest(tmp_path, "--data", str(data), "--run-id", "tiny"))
    assert table_row(result.stdout, "TINYUSDT")[:2] == ["TINYUSDT", "0"]
    notes = notes_of(tmp_path, "tiny")
    assert any(note.startswith("TINYUSDT: prices around 1.1e-06 with a tick of 0.0001")
               and "no rules known for TINYUSDT" in note for note in notes), notes
    [refused] = [note for note in notes if note.startswith("TINYUSDT: no trade:")]
    assert re.search(r"every one of the \d+ entry signals was refused; the last: \S", refused), \
        refused
    assert refused in result.stderr.splitlines()


def test_a_strategy_that_never_signals_is_named_as_the_reason(tmp_path: Path) -> None:
    folder = with_strategies(tmp_path)
    result = finished(backtest(folder, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "silent",
                               TRADEBOT_STRATEGY="mystrategies.quiet:Silent"))
    candles = report_of(folder, "silent")["candles"]
    note = f"XRPUSDT: no trade: the strategy gave no entry signal in {candles:,} candles"
    assert note in result.stderr.splitlines()
    assert notes_of(folder, "silent") == [note, XRP_FUNDING, xrp_day_warmup(needs=10)]


XRP_FUNDING = ("funding: XRPUSDT from a funding file (rates 2021-11-18 00:00 to 2021-12-18 "
               "00:00 UTC; before the first, the assumed 0.01 % per 8 h)")


def xrp_day_warmup(needs: int) -> str:
    """The warm-up note of XRP_DAY: the bundled day before it (trader/backtest_warmup.py)."""
    return (f"warm-up: XRPUSDT: the 288 candles before 2021-11-16 00:00 UTC in the data (the "
            f"strategy needs {needs}) fed the indicators without trading; trades, equity and "
            "funding start at 2021-11-16 00:00 UTC")


def test_a_run_that_traded_has_no_notes_but_where_its_funding_came_from(tmp_path: Path) -> None:
    result = finished(backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "plain"))
    assert "\nNotes\n  funding: XRPUSDT from a funding file" in result.stdout
    assert report_of(tmp_path, "plain")["notes"] == [XRP_FUNDING]
    assert result.stderr.strip() == ""


# --- #12 a reused --run-id -------------------------------------------------------------------
def test_a_reused_run_id_replaces_the_earlier_run_and_says_so(tmp_path: Path) -> None:
    finished(backtest(tmp_path, "--symbols", "BTCUSDT", "--run-id", "again"))
    result = finished(backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "again"))
    assert "replaced the earlier run again (out/again)" in result.stderr.splitlines()
    databases = tmp_path / "out" / "again" / "databases"
    assert [p.name for p in databases.iterdir()] == ["XRPUSDT"]   # no stale BTCUSDT
    assert report_of(tmp_path, "again")["symbols"] == ["XRPUSDT"]


def test_a_run_id_naming_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / "out" / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    result = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY, "--run-id", "mine")
    assert result.returncode == 2
    assert result.stderr.strip() == ("backtest error: out/mine holds files that are not a "
                                     "tradebot run's (notes.txt): pick another --run-id")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_exit_plan_two_that_never_fits_is_said(tmp_path: Path) -> None:
    """TRADEBOT_TP1_R beyond the strategy's target (2 R): every trade falls back to one TP;
    the report says so instead of silently matching the one-TP plan (fresh-user finding)."""
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "far",
                      TRADEBOT_EXIT_PLAN="two", TRADEBOT_TP1_R="5")
    assert result.returncode == 0, result.stderr[-2000:]
    [note] = [n for n in report_of(tmp_path, "far")["notes"] if "TRADEBOT_EXIT_PLAN" in n]
    assert "every one of the trades had one take-profit" in note and "TRADEBOT_TP1_R=5" in note
    fits = backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "fits",
                    TRADEBOT_EXIT_PLAN="two", TRADEBOT_TP1_R="1")
    assert not [n for n in report_of(tmp_path, "fits")["notes"] if "TRADEBOT_EXIT_PLAN" in n]
    assert fits.returncode == 0


def test_funding_paid_while_a_trade_was_open_is_in_that_trade(tmp_path: Path) -> None:
    """The bundled XRPUSDT run holds trades across funding times: their funding is in
    trades.csv and their net, not "outside the trades" (fresh-user finding)."""
    import csv
    from decimal import Decimal
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "f")
    assert result.returncode == 0, result.stderr[-2000:]
    with (tmp_path / "out" / "f" / "trades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    paid = [row for row in rows if Decimal(row["funding"]) != 0]
    assert paid, "a trade open at a funding time carries its funding"
    for row in paid:
        assert Decimal(row["net_pnl"]) == (Decimal(row["gross_pnl"]) - Decimal(row["fees"])
                                           + Decimal(row["funding"]))


def test_funding_is_counted_once_in_the_portfolio(tmp_path: Path) -> None:
    """The funding inside trades plus the funding outside them is the account's funding,
    not twice the part inside (the portfolio said -4.08 for -2.04 paid)."""
    from decimal import Decimal
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--run-id", "once")
    assert result.returncode == 0, result.stderr[-2000:]
    report = report_of(tmp_path, "once")
    in_trades = sum(Decimal(row["funding"]) for row in report["per_symbol"]
                    if row["label"] == "TOTAL")
    outside = sum((Decimal(v) for v in report["funding_outside_trades"].values()), Decimal(0))
    assert Decimal(report["performance"]["funding"]) == in_trades + outside
    assert Decimal(report["performance"]["funding"]).quantize(Decimal("0.01")) == Decimal("-2.04")


def test_a_position_open_at_the_end_is_noted_with_what_it_adds_to_the_equity(
        tmp_path: Path) -> None:
    """The equity (and the return, drawdown and ratios drawn from it) counts a position still
    open at the last candle at its close; the trades and the net PnL do not. The report said
    "Net PnL -613.51" above "Equity 10,000.00 -> 9,357.69" with nothing to explain the
    28.80 between them (report.json's extra.open_positions only). 30.16 since the day
    before --from warms the strategy up: the window trades from its first candle."""
    result = backtest(tmp_path, "--symbols", "XRPUSDT", "--from", "2021-11-16",
                      "--to", "2021-11-17T18:30", "--run-id", "open")
    assert result.returncode == 0, result.stderr
    report = report_of(tmp_path, "open")
    assert report["extra"]["open_positions"] == 1
    [note] = [line for line in report["notes"] if "still open at the end" in line]
    assert re.fullmatch(r"XRPUSDT: a (LONG|SHORT) opened \d{4}-\d\d-\d\d \d\d:\d\d UTC was still "
                        r"open at the end: the equity counts it at the last close \(-30\.16 "
                        r"USDT\); the trades and the net PnL do not", note), note
    assert note in result.stderr and note in result.stdout


def test_an_entry_that_never_filled_is_not_noted_as_an_open_position() -> None:
    """A maker entry still resting unfilled at the last candle holds no position: the note
    said "a LONG opened ... was still open at the end" about it."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from tests.positions import make
    from trader.backtest_notes import open_at_end_notes
    from trader.position import PositionState
    resting = make(state=PositionState.ENTERING, quantity="0",
                   opened_at=datetime(2021, 11, 17, 18, 0, tzinfo=UTC))
    [note] = open_at_end_notes([resting], Decimal(0))
    assert note == ("BTCUSDT: a LONG entry placed 2021-11-17 18:00 UTC had not filled at "
                    "the end: no position, nothing counted"), note
    opened = make(opened_at=datetime(2021, 11, 17, 18, 5, tzinfo=UTC))
    notes = open_at_end_notes([resting, opened], Decimal("-1.5"))
    assert notes[-1] == ("BTCUSDT: a LONG opened 2021-11-17 18:05 UTC was still open at the "
                         "end: the equity counts it at the last close (-1.50 USDT); the "
                         "trades and the net PnL do not"), notes


def test_a_symbol_without_known_rules_says_its_rules_are_generic(tmp_path: Path) -> None:
    """h-review13: FOOUSDT holding XRPUSDT's candles lost 41 % more (generic step, spread
    and maintenance) and nothing said why; a known symbol has no such note (negative)."""
    data = xrp_file(tmp_path, name="FOOUSDT-5m.csv", rows=600)
    result = finished(backtest(tmp_path, "--data", str(data), "--run-id", "foo"))
    [note] = [line for line in notes_of(tmp_path, "foo") if "no exchange rules known" in line]
    assert note.startswith("FOOUSDT: no exchange rules known for it (known: BNBUSDT, BTCUSDT")
    assert "generic ones used (tick 0.0001, step 0.001, min notional 5" in note
    assert note in result.stderr.splitlines()
    known = finished(backtest(tmp_path, "--data", str(xrp_file(tmp_path, rows=600)),
                              "--run-id", "xrp"))
    assert "no exchange rules known" not in known.stderr
