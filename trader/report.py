"""The backtest report: the portfolio (every symbol together), the per-symbol table with its
TOTAL row, results by exit reason, and the files `tradebot backtest` leaves behind.

One run writes one directory, `out/<run-id>/`:
- `report.txt`: the text printed at the end of the run (`render_text`),
- `report.json`: every `Performance` field of the portfolio (Decimals as strings, datetimes
  ISO 8601, durations in seconds), the per-symbol rows with TOTAL, the periods, the run's
  symbols, candle count, duration, `notes` (lines saying why a result is empty or suspect)
  and `extra`,
- `trades.csv`: one row per closed trade, Decimals as plain strings (no exponent),
- `equity.csv`: the portfolio's equity curve (`at,equity`),
- `equity.png`: equity, drawdown and PnL by symbol (trader/report_chart.py),
- `databases/<SYMBOLS>/backtest.db`: each engine run's journal (written by the backtest).

Symbols whose data do not overlap in time run one period after another on one account
(trader/backtest_periods.py `run_groups`: each later run starts with the equity the earlier one
ended with); `combine` joins their curves into one portfolio, and statistics count only
the time the runs cover (trader/metrics.py). With `--separate-accounts` each symbol runs on
an account of its own (trader/backtest_accounts.py) and `sum_accounts` makes the portfolio
their sum: N accounts of the configured balance, the equity of all of them at each time.
"""

import csv
import heapq
import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from loguru import logger

from trader.backtest_curve import CurveRecorder
from trader.domain import ZERO
from trader.metrics import EquityPoint, Performance, Period, TradeRecord, performance
from trader.report_text import render_text
from trader.trade_stats import TOTAL, TradeSummary, by_symbol, summarize

__all__ = ["BacktestReport", "SeparateAccounts", "combine", "read_performance", "read_trades",
           "render_text", "sum_accounts", "symbol_rows", "write_report"]

EQUITY_PNG = "equity.png"
EQUITY_CSV = "equity.csv"
TRADES_CSV = "trades.csv"
REPORT_JSON = "report.json"
REPORT_TXT = "report.txt"
DATABASES = "databases"   # <run>/databases/<SYMBOLS>/backtest.db: each engine run's journal
TRADE_COLUMNS = [column.name for column in fields(TradeRecord)]
_DECIMAL_TRADE_COLUMNS = {"quantity", "entry_price", "exit_price", "gross_pnl", "fees",
                          "funding", "net_pnl"}
_DECIMAL_PERFORMANCE_FIELDS = {"gross_pnl", "fees", "funding", "net_pnl", "start_equity",
                               "end_equity", "max_drawdown", "avg_trade"}
_TIME_PERFORMANCE_FIELDS = {"period_start", "period_end", "drawdown_start", "drawdown_bottom",
                            "drawdown_end"}
_DURATION_PERFORMANCE_FIELDS = {"drawdown_duration", "covered"}


@dataclass(frozen=True)
class SeparateAccounts:
    """A portfolio of `count` paper accounts of `balance` USDT each, one per symbol
    (`tradebot backtest --separate-accounts`), run on `processes` worker processes at once."""
    count: int
    balance: Decimal
    processes: int


@dataclass(frozen=True)
class BacktestReport:
    """One backtest: an engine run (trader/backtest.py `run_backtest`) or several combined.
    `periods`: the stretches of time with data (empty: the curve's span); `funding_outside`:
    funding paid or received outside the trades' own records, by the symbols of the run
    that paid it ("BTCUSDT" or "BTCUSDT,ETHUSDT" when runs shared one account); `notes`:
    one line per finding of trader/backtest_notes.py (a warmup longer than the data...)."""
    performance: Performance
    trades: list[TradeRecord]
    curve: list[EquityPoint]
    symbols: list[str]
    candles: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    periods: list[Period] = field(default_factory=list)
    funding_outside: dict[str, Decimal] = field(default_factory=dict)
    run_id: str = ""
    notes: list[str] = field(default_factory=list)   # why a result is empty or suspect
    # What decided the result (trader/run_settings.py): strategy parameters and settings by
    # variable name, all of them (report.json); `changed`: those not at their default (text)
    settings: dict[str, str] = field(default_factory=dict)
    changed: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, str] = field(default_factory=dict)   # symbol -> "5m": the candles'
    # The account's risk record at the end (trader/risk_state.py: equity peak, fraction):
    # the next period of a chained run starts from it, as one account would (not written)
    risk_state: dict[str, str] = field(default_factory=dict)
    accounts: SeparateAccounts | None = None    # None: one account (the default)

    def __repr__(self) -> str:
        # Sizes, not contents: asyncio.run (3.11) formats the main task's result when it
        # puts the SIGINT handler back, and a listed curve grew with the run.
        return (f"BacktestReport(run_id={self.run_id!r}, symbols={self.symbols!r}, "
                f"candles={self.candles}, {len(self.trades)} trades, "
                f"{len(self.curve)} curve points, net_pnl={self.performance.net_pnl})")


def combine(reports: list[BacktestReport], run_id: str = "") -> BacktestReport:
    """One portfolio report from runs over separate periods, each started with the equity
    the one before it ended with (see the module docstring): their curves are joined as
    they are, the later run's PnL is not shifted onto the earlier one's."""
    ordered = sorted(reports, key=lambda report: (0, report.curve[0].at) if report.curve
                     else (1, 0))
    curve: list[EquityPoint] = []
    funding: dict[str, Decimal] = {}
    for report in ordered:
        curve += report.curve
        outside = report.performance.funding - sum((t.funding for t in report.trades), ZERO)
        if outside:
            key = ",".join(report.symbols)
            funding[key] = funding.get(key, ZERO) + outside
    trades = sorted((t for report in ordered for t in report.trades), key=lambda t: t.closed_at)
    periods = [_span(report) for report in ordered if report.curve]
    return BacktestReport(
        performance=performance(curve, trades, sum(funding.values(), ZERO), periods=periods),
        trades=trades, curve=curve,
        symbols=sorted({symbol for report in ordered for symbol in report.symbols}),
        candles=sum(report.candles for report in ordered),
        seconds=sum(report.seconds for report in ordered),
        extra=_combined_extra(ordered), periods=periods, funding_outside=funding, run_id=run_id,
        notes=[note for report in ordered for note in report.notes])


def sum_accounts(reports: list[BacktestReport], accounts: SeparateAccounts, seconds: float,
                 run_id: str = "") -> BacktestReport:
    """One portfolio report from `reports`, each one account's run (one symbol) started with
    `accounts.balance`: its equity is the accounts' sum at each time (`summed_curve`), its
    trades all of theirs (each sized on its own account), `seconds` the wall time (they ran
    at once). Statistics count the time at least one account ran (their spans joined)."""
    curve = summed_curve([report.curve for report in reports], accounts.balance)
    funding: dict[str, Decimal] = {}
    for report in reports:
        outside = report.performance.funding - sum((t.funding for t in report.trades), ZERO)
        if outside:
            funding[",".join(report.symbols)] = outside
    trades = sorted((t for report in reports for t in report.trades), key=lambda t: t.closed_at)
    periods = joined_periods([_span(report) for report in reports if report.curve])
    return BacktestReport(
        performance=performance(curve, trades, sum(funding.values(), ZERO), periods=periods),
        trades=trades, curve=curve,
        symbols=sorted({symbol for report in reports for symbol in report.symbols}),
        candles=sum(report.candles for report in reports), seconds=seconds,
        extra=_combined_extra(reports), periods=periods, funding_outside=funding,
        run_id=run_id, notes=[_of_account(report, note) for report in reports
                              for note in report.notes],
        accounts=accounts)


def _of_account(report: BacktestReport, note: str) -> str:
    """An account's note saying whose it is ("the account was bust at ..." names none)."""
    symbols = ", ".join(report.symbols)
    return note if note.startswith(symbols) else f"{symbols}'s account: {note}"


def summed_curve(curves: list[list[EquityPoint]], balance: Decimal) -> list[EquityPoint]:
    """The equity of several accounts together at each time one of them has a point: an
    account counts `balance` before its first point and its last equity after its last
    (flat while it has no candles). Bounded as a run's own curve (trader/backtest_curve.py)."""
    points = heapq.merge(*([(point.at, index, point.equity) for point in curve]
                           for index, curve in enumerate(curves)), key=itemgetter(0))
    current = [balance] * len(curves)
    total = balance * len(curves)
    recorder = CurveRecorder()
    for at, moves in groupby(points, key=itemgetter(0)):
        for _, index, equity in moves:
            total += equity - current[index]
            current[index] = equity
        recorder.add(EquityPoint(at, total))
    return recorder.points()


def joined_periods(spans: list[Period]) -> list[Period]:
    """Overlapping spans joined, in time order: the stretches when some account ran."""
    joined: list[Period] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _span(report: BacktestReport) -> Period:
    return (report.curve[0].at, report.curve[-1].at)


def _combined_extra(reports: list[BacktestReport]) -> dict[str, Any]:
    if len(reports) == 1:
        return dict(reports[0].extra)
    return {"runs": [{"symbols": report.symbols, "period": list(_span(report))
                      if report.curve else None, **report.extra} for report in reports]}


def symbol_rows(report: BacktestReport) -> list[TradeSummary]:
    """The per-symbol table: one row per symbol of the run (0 trades included), in symbol
    order, then TOTAL (every trade)."""
    traded = {row.label: row for row in by_symbol(report.trades)}
    rows = [traded.get(symbol) or summarize(symbol, [])
            for symbol in sorted(set(report.symbols) | set(traded))]
    return [*rows, summarize(TOTAL, report.trades)]


# --- files ----------------------------------------------------------------------------------
def write_report(report: BacktestReport, out_dir: Path,
                 named_in: Path | None = None) -> dict[str, Path]:
    """Write the report's files into `out_dir` (created if missing); returns them by name as
    they are read once the run is kept, in `named_in` (default `out_dir`: a run staged beside
    its final folder, trader/backtest_folders.py): {"equity": .../equity.png, "trades": ...,
    "curve": ..., "report": ..., "text": ...}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"equity": EQUITY_PNG, "trades": TRADES_CSV, "curve": EQUITY_CSV,
             "report": REPORT_JSON, "text": REPORT_TXT}
    files = {key: out_dir / name for key, name in names.items()}
    shown = {key: Path(named_in or out_dir) / name for key, name in names.items()}
    if (out_dir / DATABASES).is_dir():      # the engine runs' journals, written before
        shown["databases"] = Path(named_in or out_dir) / DATABASES
    # matplotlib (~0.5 s of imports) only once a report is written: a backtest refused
    # for its options or data says so without it.
    from trader.report_chart import BacktestPicture, backtest_chart_png
    picture = BacktestPicture(_chart_title(report), report.curve, report.periods, report.trades)
    files["equity"].write_bytes(backtest_chart_png(picture))
    _write_trades(report.trades, files["trades"])
    _write_curve(report.curve, files["curve"])
    files["report"].write_text(json.dumps(_report_document(report), indent=2, default=_json_value)
                               + "\n", encoding="utf-8")
    files["text"].write_text(render_text(report, symbol_rows(report), shown) + "\n",
                             encoding="utf-8")
    logger.info("backtest report written out_dir={} trades={} points={}", out_dir,
                len(report.trades), len(report.curve))
    return shown


def _chart_title(report: BacktestReport) -> str:
    """The symbols, as many as fit on a phone's line."""
    if len(report.symbols) > 4:
        return f"{len(report.symbols)} symbols: {', '.join(report.symbols[:3])}, ..."
    return ", ".join(report.symbols) or "no symbols"


def _write_trades(trades: list[TradeRecord], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRADE_COLUMNS)
        for trade in trades:
            writer.writerow([_plain(_shown(column, getattr(trade, column)))
                             for column in TRADE_COLUMNS])


PRICE_DIGITS = Decimal("1e-8")   # Binance's avgPrice precision


def _shown(column: str, value: Any) -> Any:
    """An average fill price (a division: up to 28 digits) to 8 decimals, as Binance gives
    avgPrice; everything else exactly as recorded."""
    if column in ("entry_price", "exit_price") and isinstance(value, Decimal) \
            and value.as_tuple().exponent < -8:      # type: ignore[operator]
        return value.quantize(PRICE_DIGITS).normalize()
    return value


def _write_curve(curve: list[EquityPoint], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["at", "equity"])
        writer.writerows([point.at.isoformat(), _plain(point.equity)] for point in curve)


def _report_document(report: BacktestReport) -> dict[str, Any]:
    performance_fields = {item.name: _plain(getattr(report.performance, item.name))
                          for item in fields(Performance)}
    return {"run_id": report.run_id, "symbols": report.symbols, "candles": report.candles,
            "seconds": report.seconds, "performance": performance_fields,
            "per_symbol": [{name: _plain(value) for name, value in _row_fields(row).items()}
                           for row in symbol_rows(report)],
            "funding_outside_trades": {key: _plain(value)
                                       for key, value in report.funding_outside.items()},
            "periods": [[_plain(start), _plain(end)] for start, end in report.periods],
            "notes": report.notes, "intervals": report.intervals, "settings": report.settings,
            "extra": report.extra,
            **({"accounts": {"count": report.accounts.count,
                             "balance": _plain(report.accounts.balance),
                             "processes": report.accounts.processes}}
               if report.accounts else {})}


def _row_fields(row: TradeSummary) -> dict[str, Any]:
    return {item.name: getattr(row, item.name) for item in fields(TradeSummary)}


def _plain(value: Any) -> Any:
    """Decimal -> plain string, datetime -> ISO, timedelta -> seconds, dict values alike;
    JSON-native values pass through."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _json_value(value: Any) -> Any:
    """json.dumps fallback for the values `extra` may carry."""
    if isinstance(value, Decimal | datetime | timedelta):
        return _plain(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"report.json cannot hold {type(value).__name__}: {value!r}")


def read_trades(path: Path) -> list[TradeRecord]:
    """Parse a trades.csv written by `write_report`."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [TradeRecord(**{name: _parse_trade_field(name, text) for name, text in row.items()})
                for row in csv.DictReader(handle)]


def _parse_trade_field(name: str, text: str) -> Any:
    if name in _DECIMAL_TRADE_COLUMNS:
        return Decimal(text)
    if name in ("opened_at", "closed_at"):
        return datetime.fromisoformat(text)
    return text


def read_performance(path: Path) -> Performance:
    """Parse the `performance` section of a report.json written by `write_report`."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    values = {item.name: _parse_performance_field(item.name, document["performance"][item.name])
              for item in fields(Performance)}
    return Performance(**values)


def _parse_performance_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DECIMAL_PERFORMANCE_FIELDS:
        return Decimal(value)
    if name in _TIME_PERFORMANCE_FIELDS:
        return datetime.fromisoformat(value)
    if name in _DURATION_PERFORMANCE_FIELDS:
        return timedelta(seconds=value)
    if name == "exit_pnl":
        return {reason: Decimal(amount) for reason, amount in value.items()}
    return value
