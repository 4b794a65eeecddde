"""The text `tradebot backtest` prints at the end (and keeps as report.txt): the run, its
notes (why a result is empty or suspect, when there are any), the settings that differ from
the defaults, the portfolio's figures, the per-symbol table with its TOTAL row, PnL by exit
reason, and where the files are.

Money is shown to the cent with thousands separators and no "-0.00"; undefined ratios as "-".
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from trader.metrics import MIN_CAGR_SPAN, Performance, Period
from trader.trade_stats import TradeSummary

TABLE_COLUMNS = ("symbol", "trades", "win %", "net PnL", "fees", "expectancy", "PF", "SQN")


class Report(Protocol):
    """What the text shows of a `trader.report.BacktestReport` (read-only: a frozen
    dataclass's fields)."""
    @property
    def performance(self) -> Performance: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def candles(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def periods(self) -> list[Period]: ...
    @property
    def funding_outside(self) -> dict[str, Decimal]: ...
    @property
    def run_id(self) -> str: ...
    @property
    def notes(self) -> list[str]: ...
    @property
    def changed(self) -> dict[str, str]: ...
    @property
    def intervals(self) -> dict[str, str]: ...
    @property
    def accounts(self) -> "SeparateAccounts | None": ...


class SeparateAccounts(Protocol):
    """What the text shows of a `trader.report.SeparateAccounts`."""
    @property
    def count(self) -> int: ...
    @property
    def balance(self) -> Decimal: ...
    @property
    def processes(self) -> int: ...


def render_text(report: Report, rows: Sequence[TradeSummary],
                files: Mapping[str, Path] | None = None) -> str:
    """The whole report; `rows` is `report.symbol_rows(report)`, `files` what
    `write_report` wrote."""
    sections = [_header(report), *([["Notes", *(f"  {note}" for note in report.notes)]]
                                   if report.notes else []),
                *([_settings(report.changed)] if report.changed else []),
                _portfolio(report.performance), _symbol_table(report, rows),
                _exit_table(report.performance)]
    if files:
        folder = next(iter(files.values())).parent
        sections.append([f"Files in {folder}/", "  " + "  ".join(
            path.name + ("/" if key == "databases" else "") for key, path in files.items())])
    return "\n\n".join("\n".join(lines) for lines in sections)


def _header(report: Report) -> list[str]:
    perf = report.performance
    run = f"   run {report.run_id}" if report.run_id else ""
    lines = [f"Backtest {', '.join(report.symbols) or '-'}{run}"]
    periods = report.periods or ([(perf.period_start, perf.period_end)]
                                 if perf.period_start and perf.period_end else [])
    if not periods:
        lines.append("  (no data)")
    for start, end in periods:
        lines.append(f"  {_moment(start)} -> {_moment(end)} UTC  ({duration_text(end - start)})")
    noun = "candle" if report.candles == 1 else "candles"
    lines.append(f"  {report.candles:,} {noun} in {report.seconds:.1f} s")
    if report.intervals:     # one interval for all, else each symbol's
        shown = set(report.intervals.values())
        lines.append("  candle interval " + (shown.pop() if len(shown) == 1 else ", ".join(
            f"{symbol} {interval}" for symbol, interval in sorted(report.intervals.items()))))
    if report.accounts is not None:
        lines.append(_accounts_line(report.accounts))
    elif len(periods) > 1:
        lines.append("  periods apart run one after the other on one account: each starts "
                     "with the equity the one before ended with")
    return lines


def _accounts_line(accounts: SeparateAccounts) -> str:
    """`--separate-accounts`: what the portfolio is the sum of, and why its symbols ran at once."""
    return (f"  {accounts.count} separate accounts of {_money(accounts.balance)} USDT each "
            f"(starting capital {_money(accounts.count * accounts.balance)} USDT), "
            f"{how_run(accounts.count, accounts.processes)} (portfolio heat does not couple "
            "them)")


def how_run(accounts: int, processes: int) -> str:
    """How `accounts` runs shared `processes` at once, in words: "run in parallel on 2
    processes"."""
    if processes == 1:
        return "run one after the other in 1 process (one core)"
    if accounts <= processes:
        return f"run in parallel on {processes} processes"
    return f"run in parallel, {processes} processes at a time"


def _settings(changed: Mapping[str, str]) -> list[str]:
    """The strategy, then the settings not at their default (report.json has all)."""
    name = changed.get("strategy.name", "")
    params = [f"{key.removeprefix('strategy.')}={value}" for key, value in changed.items()
              if key.startswith("strategy.") and key != "strategy.name"]
    lines = ["Settings (not at their default; report.json lists all)",
             f"  strategy {name}" + (f": {', '.join(params)}" if params else "")]
    others = [f"{key}={value}" for key, value in changed.items() if not key.startswith("strategy.")]
    lines += [f"  {text}" for text in others] or ["  every setting at its default"]
    return lines


def _portfolio(perf: Performance) -> list[str]:
    return [
        "Portfolio (amounts in USDT)",
        _row("Trades", f"{perf.trades}  (won {perf.wins}, lost {perf.losses}, win rate "
                       + (f"{perf.win_rate * 100:.1f} %)" if perf.trades else "-)")),
        _row("Gross PnL", _money(perf.gross_pnl, signed=True)),
        _row("Fees", _money(perf.fees)),
        _row("Funding", _money(perf.funding, signed=True)),
        _row("Net PnL", _money(perf.net_pnl, signed=True)),
        _row("Equity", f"{_money(perf.start_equity)} -> {_money(perf.end_equity)}  "
                       f"({perf.return_pct:+.2f} %)"),
        _row("CAGR", _cagr(perf)),
        _row("Sharpe", f"{perf.sharpe:.2f}" if perf.trades else "-"),     # a flat curve: 0/0
        _row("Sortino", f"{perf.sortino:.2f}" if perf.trades else "-"),
        _row("Calmar", _ratio(perf.calmar)),
        _row("Max drawdown", f"{perf.max_drawdown_pct:.2f} %  ({_money(perf.max_drawdown)})"),
        _row("  from / to", _drawdown_span(perf)),
        _row("Exposure", f"{perf.exposure_pct:.1f} %"),
        _row("Profit factor", _ratio(perf.profit_factor)),
        _row("Expectancy", f"{_money(perf.avg_trade, signed=True)} per trade"
                           + (f"  ({perf.expectancy_ratio:+.2f} x the average loss)"
                              if perf.expectancy_ratio is not None else "")),
        _row("SQN", f"{perf.sqn:.2f}"),
    ]


def _symbol_table(report: Report, rows: Sequence[TradeSummary]) -> list[str]:
    widths = (10, 6, 6, 11, 10, 11, 6, 6)
    lines = ["By symbol (USDT)", "  " + _cells(TABLE_COLUMNS, widths)]
    for row in rows:
        lines.append("  " + _cells((
            row.label, str(row.trades), f"{row.win_rate * 100:.1f}",
            _money(row.net_pnl, signed=True), _money(row.fees),
            _money(row.expectancy, signed=True), _ratio(row.profit_factor), f"{row.sqn:.2f}"),
            widths))
    for symbols, amount in report.funding_outside.items():
        flow = "paid" if amount < 0 else "received"
        lines.append(f"  + funding {_money(amount, signed=True)} ({flow}) outside the trades "
                     f"({symbols}): in the portfolio's net PnL, not in TOTAL")
    return lines


def _exit_table(perf: Performance) -> list[str]:
    if not perf.exits:
        return ["By exit reason (USDT)", "  -"]
    pnl = perf.exit_pnl or {}
    lines = ["By exit reason (USDT)", "  " + _cells(("reason", "trades", "net PnL"), (16, 6, 11))]
    for reason, count in perf.exits.items():
        lines.append("  " + _cells((reason, str(count),
                                    _money(pnl.get(reason, Decimal(0)), signed=True)),
                                   (16, 6, 11)))
    return lines


def _cells(values: Sequence[str], widths: Sequence[int]) -> str:
    first, *rest = values
    return f"{first:<{widths[0]}}" + "".join(
        f" {value:>{width}}" for value, width in zip(rest, widths[1:], strict=True))


def _row(label: str, value: str) -> str:
    return f"  {label:<14} {value}"


def _money(value: Decimal, *, signed: bool = False) -> str:
    rounded = value.quantize(Decimal("0.01"))
    if rounded == 0:
        rounded = abs(rounded)   # no "-0.00"
    return f"{rounded:+,.2f}" if signed else f"{rounded:,.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cagr(perf: Performance) -> str:
    if perf.cagr_pct is None:
        return "-  (needs a week of data)" if perf.covered < MIN_CAGR_SPAN else "-"
    note = "" if perf.covered >= timedelta(days=365) else \
        f"  (annualised from {duration_text(perf.covered)}: read with care)"
    return f"{perf.cagr_pct:+,.1f} %{note}"


def _drawdown_span(perf: Performance) -> str:
    if perf.drawdown_start is None or perf.drawdown_duration is None:
        return "-"
    end = f"recovered {_moment(perf.drawdown_end)}" if perf.drawdown_end else "not recovered"
    bottom = f", bottom {_moment(perf.drawdown_bottom)}" if perf.drawdown_bottom else ""
    return (f"peak {_moment(perf.drawdown_start)}{bottom}, {end}  "
            f"({duration_text(perf.drawdown_duration)})")


def _moment(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def duration_text(span: timedelta) -> str:
    """'45 min', '25 h', '6.9 days' (the charts use it too: trader/chart_style.py; it lives
    here so that a backtest's text needs no matplotlib)."""
    seconds = span.total_seconds()
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} days"
