"""The backtest report: what `tradebot backtest` prints and the files it leaves behind.

`write_report` writes three files into one directory:
- `equity.png`: equity and drawdown (trader/chart.py),
- `trades.csv`: one row per closed trade, Decimals as plain strings (no exponent),
  datetimes ISO 8601,
- `report.json`: every `Performance` field (Decimals as strings, datetimes ISO 8601) plus
  the run's symbols, candle count, duration and `extra`.
`render_text` is the compact table printed at the end of the run. `read_trades` and
`read_performance` parse the files back.
"""

import csv
import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from loguru import logger

from trader.chart import equity_chart_png
from trader.metrics import EquityPoint, Performance, TradeRecord

EQUITY_PNG = "equity.png"
TRADES_CSV = "trades.csv"
REPORT_JSON = "report.json"
TRADE_COLUMNS = [column.name for column in fields(TradeRecord)]
_DECIMAL_TRADE_COLUMNS = {"quantity", "entry_price", "exit_price", "gross_pnl", "fees",
                          "funding", "net_pnl"}
_DECIMAL_PERFORMANCE_FIELDS = {"gross_pnl", "fees", "funding", "net_pnl", "start_equity",
                               "end_equity", "max_drawdown", "avg_trade"}


@dataclass(frozen=True)
class BacktestReport:
    performance: Performance
    trades: list[TradeRecord]
    curve: list[EquityPoint]
    symbols: list[str]
    candles: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def write_report(report: BacktestReport, out_dir: Path) -> dict[str, Path]:
    """Write equity.png, trades.csv and report.json into `out_dir` (created if missing).
    Returns {"equity": ..., "trades": ..., "report": ...}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"equity": out_dir / EQUITY_PNG, "trades": out_dir / TRADES_CSV,
             "report": out_dir / REPORT_JSON}
    files["equity"].write_bytes(equity_chart_png(report.curve, title=_chart_title(report)))
    _write_trades(report.trades, files["trades"])
    files["report"].write_text(json.dumps(_report_document(report), indent=2, default=_json_value)
                               + "\n", encoding="utf-8")
    logger.info("backtest report written out_dir={} trades={} points={}", out_dir,
                len(report.trades), len(report.curve))
    return files


def _chart_title(report: BacktestReport) -> str:
    return f"Backtest {', '.join(report.symbols)}" if report.symbols else "Backtest"


def _write_trades(trades: list[TradeRecord], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRADE_COLUMNS)
        for trade in trades:
            writer.writerow([_plain(getattr(trade, column)) for column in TRADE_COLUMNS])


def _report_document(report: BacktestReport) -> dict[str, Any]:
    performance = {item.name: _plain(getattr(report.performance, item.name))
                   for item in fields(Performance)}
    return {"performance": performance, "symbols": report.symbols, "candles": report.candles,
            "seconds": report.seconds, "extra": report.extra}


def _plain(value: Any) -> Any:
    """Decimal -> plain string, datetime -> ISO; JSON-native values pass through."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _json_value(value: Any) -> Any:
    """json.dumps fallback for the values `extra` may carry."""
    if isinstance(value, Decimal | datetime):
        return _plain(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
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
    raw = document["performance"]
    values: dict[str, Any] = {}
    for item in fields(Performance):
        value = raw[item.name]
        if item.name in _DECIMAL_PERFORMANCE_FIELDS:
            value = Decimal(value)
        elif item.name in ("period_start", "period_end") and value is not None:
            value = datetime.fromisoformat(value)
        values[item.name] = value
    return Performance(**values)


def render_text(report: BacktestReport, files: dict[str, Path] | None = None) -> str:
    """The compact table printed at the end of `tradebot backtest`; `files` is what
    `write_report` returned."""
    perf = report.performance
    lines = [
        f"Backtest {', '.join(report.symbols) or '-'}  {_period_text(perf)}",
        f"  {report.candles:,} candles in {report.seconds:.1f} s",
        _row("Trades", f"{perf.trades}  (won {perf.wins}, lost {perf.losses}, "
                       f"win rate {perf.win_rate * 100:.1f} %)"),
        _row("Gross PnL", _money(perf.gross_pnl, signed=True)),
        _row("Fees", _money(perf.fees)),
        _row("Funding", _money(perf.funding, signed=True)),
        _row("Net PnL", _money(perf.net_pnl, signed=True)),
        _row("Equity", f"{_money(perf.start_equity)} -> {_money(perf.end_equity)}  "
                       f"({perf.return_pct:+.2f} %)"),
        _row("Sharpe", f"{perf.sharpe:.2f}"),
        _row("Sortino", f"{perf.sortino:.2f}"),
        _row("Max drawdown", f"{perf.max_drawdown_pct:.2f} %  ({_money(perf.max_drawdown)})"),
        _row("Exposure", f"{perf.exposure_pct:.1f} %"),
        _row("Profit factor", "-" if perf.profit_factor is None else f"{perf.profit_factor:.2f}"),
        _row("Avg trade", _money(perf.avg_trade, signed=True)),
        _row("Exits", ", ".join(f"{reason} {count}" for reason, count in perf.exits.items())
             or "-"),
    ]
    for name, path in (files or {}).items():
        lines.append(_row(f"{name.capitalize()} file", str(path)))
    return "\n".join(lines)


def _row(label: str, value: str) -> str:
    return f"  {label:<14} {value}"


def _money(value: Decimal, *, signed: bool = False) -> str:
    rounded = value.quantize(Decimal("0.01"))
    if rounded == 0:
        rounded = abs(rounded)   # no "-0.00"
    return f"{rounded:+,.2f}" if signed else f"{rounded:,.2f}"


def _period_text(perf: Performance) -> str:
    if perf.period_start is None or perf.period_end is None:
        return "(no data)"
    return f"{perf.period_start:%Y-%m-%d %H:%M} -> {perf.period_end:%Y-%m-%d %H:%M} UTC"
