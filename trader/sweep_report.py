"""What `tradebot sweep` leaves behind: the printed table, `results.csv` and the best trials'
equity pictures.

- `results.csv`: one row per trial, best first: rank (empty for a failed trial), trial,
  status (ok | no trade | failed; a trial with no trade ranks after every one that traded),
  every parameter, the objective's value, then every `Performance`
  field (Decimals as plain strings, datetimes ISO 8601, durations in seconds, exits as
  `REASON=count;...`), the trial's seconds and its error.
- `equity-<rank>-trial-<n>.png`: equity and drawdown of the best `top` trials that traded
  (trader/report_chart.py).
"""

import csv
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from trader.metrics import MIN_CAGR_SPAN, Performance
from trader.report_chart import equity_chart_png
from trader.sweep import Leaderboard
from trader.sweep_trial import TrialResult, describe, format_value

RESULTS_CSV = "results.csv"
# Why an objective can have no value in a trial that traded (trader/metrics.py).
NO_VALUE_WHY = {"calmar": f" (calmar is CAGR / drawdown, and CAGR needs at least "
                          f"{MIN_CAGR_SPAN.days} days of data and a drawdown)"}
# (header, Performance field, format) of the printed table, after the parameters.
TABLE_COLUMNS = [("trades", "trades", "{:d}"), ("win %", "win_rate", "{:.1%}"),
                 ("net PnL", "net_pnl", "{:+,.2f}"), ("return %", "return_pct", "{:+.2f}"),
                 ("max DD %", "max_drawdown_pct", "{:.2f}"), ("Sharpe", "sharpe", "{:.2f}"),
                 ("Sortino", "sortino", "{:.2f}"), ("PF", "profit_factor", "{:.2f}")]


def write_results_csv(board: Leaderboard, names: list[str], path: Path) -> Path:
    """One row per trial, best first (columns in the module docstring)."""
    performance_fields = [item.name for item in fields(Performance)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "trial", "status", *names, f"objective_{board.objective}",
                         *performance_fields, "seconds", "error"])
        for rank, result in _numbered(board.ranked()):
            performance = [_cell(_measured(result, name)) for name in performance_fields]
            writer.writerow([rank or "", result.number, _status(result),
                             *[_cell(result.params.get(name)) for name in names],
                             _cell(result.objective(board.objective)), *performance,
                             f"{result.seconds:.2f}", result.error or ""])
    return path


def write_pictures(board: Leaderboard, top: int, out_dir: Path) -> list[Path]:
    """equity-<rank>-trial-<n>.png for the best `top` finished trials."""
    written = []
    for rank, result in _numbered(board.ranked()):
        if rank is None or rank > top or result.no_trade:   # no trade: a flat line
            break
        title, detail = picture_headline(rank, result)
        path = out_dir / f"equity-{rank}-trial-{result.number}.png"
        path.write_bytes(equity_chart_png(board.curve(result.number), title, detail))
        written.append(path)
    return written


def picture_headline(rank: int, result: TrialResult) -> tuple[str, str]:
    """A best trial's picture title ("#1 trial 14") and the line under it: every setting
    the trial tried, `name=value` (strategy fields without their `strategy.` prefix)."""
    return (f"#{rank} trial {result.number}",
            "  ".join(f"{_short(name)}={format_value(value)}"
                      for name, value in result.params.items()))


def render_table(board: Leaderboard, names: list[str], limit: int) -> str:
    """The finished trials as a text table, best first, at most `limit` rows (the rest are
    in the CSV), then one line per failed trial."""
    ranked = board.ranked()
    finished = [(rank, result) for rank, result in _numbered(ranked) if result.ok]
    columns = list(TABLE_COLUMNS)
    if board.objective not in {field for _, field, _ in columns}:
        columns.insert(0, (board.objective, board.objective, "{:.3f}"))
    header = ["#", "trial", *names, *[title for title, _, _ in columns]]
    rows = [[str(rank), str(result.number), *[format_value(result.params[name]) for name in names],
             *[_number(_measured(result, field), pattern) for _, field, pattern in columns]]
            for rank, result in finished[:limit]]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]
    if len(finished) > limit:
        lines.append(f"... {len(finished) - limit} more in {RESULTS_CSV}")
    idle = [str(result.number) for result in ranked if result.no_trade]
    if idle:
        lines.append(f"no trade: {'trials' if len(idle) > 1 else 'trial'} {', '.join(idle)} "
                     "made none, so ranked after every trial that traded")
    if board.without_value():
        why = NO_VALUE_WHY.get(board.objective, "")
        lines.append(f"note: no trial has a {board.objective} value{why}; the order is by "
                     "trial number: rank by another --objective")
    for result in ranked:
        if not result.ok:
            lines.append(f"failed: trial {result.number} ({describe(result.params)}): "
                         f"{result.error}")
    return "\n".join(lines)


def _status(result: TrialResult) -> str:
    if not result.ok:
        return "failed"
    return "no trade" if result.no_trade else "ok"


def _short(name: str) -> str:
    """strategy.channel -> channel, TRADEBOT_RISK_BASE -> risk_base (for the picture)."""
    return name.removeprefix("strategy.").lower().removeprefix("tradebot_")


def _numbered(ranked: list[TrialResult]) -> list[tuple[int | None, TrialResult]]:
    """(rank, result); a rank only for finished trials."""
    return [(index if result.ok else None, result)
            for index, result in enumerate(ranked, start=1)]


def _measured(result: TrialResult, name: str) -> Any:
    """A Performance field of a trial; None where it has no meaning: nothing finished, or a
    win rate without trades (Performance counts it 0.0; the backtest report shows "-")."""
    if result.performance is None or (name == "win_rate" and result.no_trade):
        return None
    return getattr(result.performance, name)


def _number(value: Any, pattern: str) -> str:
    if value is None:
        return "-"
    return pattern.format(float(value) if isinstance(value, Decimal) else value)


def _cell(value: Any) -> Any:
    """A CSV cell: Decimal as a plain string, datetime ISO 8601, timedelta in seconds,
    a dict as KEY=value;..."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return ";".join(f"{key}={_cell(item)}" for key, item in value.items())
    return value
