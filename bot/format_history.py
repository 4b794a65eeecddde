"""Telegram HTML for the money views: /pnl, /balance, /daily /weekly /monthly, /performance,
/trades, and the agent's own /logs and /config.

Every PnL shown is realised NET of fees and funding (trader/trade_history.py). Tables are
monospace (<pre>) so their columns line up on a phone; every text from outside goes through
`escape`.
"""

from collections.abc import Callable

from bot.telegram_text import escape
from trader.commands import (
    BalanceView,
    CommandResult,
    LogLine,
    PerformanceRow,
    PeriodTable,
    PnlView,
    TradeView,
)
from trader.display import duration, money, number, percent, plural
from trader.domain import ZERO

PERIOD_NAMES = {"day": "last 24 h", "week": "last 7 days", "month": "last 30 days",
                "all": "all time", "today": "today (UTC)"}
TABLE_TITLES = {"day": ("Daily", "Day"), "week": ("Weekly", "Week of"),
                "month": ("Monthly", "Month")}
LEVEL_MARK = {"WARNING": "⚠️", "ERROR": "❗", "CRITICAL": "🚨"}


def format_pnl(pnl: PnlView) -> str:
    return "\n".join([
        f"<b>PnL · {escape(PERIOD_NAMES.get(pnl.period, pnl.period))}</b>",
        f"Realised <b>{money(pnl.net, signed=True)}</b> USDT net of fees and funding",
        f"gross {money(pnl.gross, signed=True)} · fees {money(-pnl.fees, signed=True)} · "
        f"funding {money(pnl.funding, signed=True)}",
        f"{plural(pnl.trades, 'trade')} · {pnl.wins} won ({pnl.win_rate:.0%})",
        *([f"+ {plural(pnl.unknown, 'trade')} closed with an unknown result (closing fills "
           "not read), not counted: see /trades and the Binance app"] if pnl.unknown else []),
        *([f"+ fees of {escape(pnl.unvalued_fees)} not valued in USDT (price not read at the "
           "close): not in the fees nor the net above"] if pnl.unvalued_fees else []),
    ])


def format_balance(balance: BalanceView) -> str:
    read = f" (read {balance.read_at:%H:%M:%S} UTC)" if balance.read_at else ""
    today = balance.today
    return "\n".join([
        f"<b>Balance</b>{read}",
        f"Wallet {money(balance.wallet)} USDT · unrealised "
        f"{money(balance.unrealized_pnl, signed=True)}",
        f"Equity <b>{money(balance.equity)}</b> USDT · free margin {money(balance.free_margin)}",
        f"Today realised <b>{money(today.net, signed=True)}</b> USDT net "
        f"({plural(today.trades, 'trade')}) · "
        f"{plural(balance.open_positions, 'open position')}",
    ])


def format_table(table: PeriodTable) -> str:
    title, column = TABLE_TITLES[table.unit]
    rows = [f"{column:<10} {'Trades':>6} {'Net USDT':>12} {'%':>8}"]
    for row in table.rows:
        start = f"{row.start:%Y-%m}" if table.unit == "month" else f"{row.start:%Y-%m-%d}"
        share = percent(row.fraction) if row.fraction is not None else "-"
        rows.append(f"{start:<10} {row.trades:>6} {money(row.net, signed=True):>12} {share:>8}")
    total = sum(row.trades for row in table.rows)
    net = sum((row.net for row in table.rows), ZERO)
    return "\n".join([
        f"<b>{title} PnL</b> (UTC, net of fees and funding)",
        "<pre>" + escape("\n".join(rows)) + "</pre>",
        f"Total {money(net, signed=True)} USDT over {plural(total, 'trade')}",
    ])


def format_performance(rows: list[PerformanceRow]) -> str:
    if not rows:
        return "<b>Performance</b>: no closed trades yet"
    lines = [f"{'Symbol':<12} {'Trades':>6} {'Won':>5} {'Net USDT':>12}"]
    for row in rows:
        if not row.symbol:
            lines.append(f"{'funding*':<12} {'':>6} {'':>5} {money(row.net, signed=True):>12}")
            continue
        won = f"{row.wins / row.trades:.0%}" if row.trades else "-"
        lines.append(f"{row.symbol:<12} {row.trades:>6} {won:>5} {money(row.net, signed=True):>12}")
    text = ["<b>Performance by symbol</b> (all time, net of fees and funding)",
            "<pre>" + escape("\n".join(lines)) + "</pre>"]
    if any(not row.symbol for row in rows):
        text.append("* funding the exchange booked without naming a position")
    text += [f"{row.symbol}: fees of {escape(row.unvalued_fees)} not valued in USDT (price not "
             "read at the close): not in its net, its trades not counted won"
             for row in rows if row.unvalued_fees]
    return "\n".join(text)


def format_trades(trades: list[TradeView]) -> str:
    if not trades:
        return "<b>Trades</b>: no closed trades yet"
    lines = [f"<b>Last {plural(len(trades), 'trade')}</b> (net of fees and funding)"]
    for trade in trades:
        if trade.exit_price is None or trade.net is None or trade.net_fraction is None:
            result = "? · <b>PnL unknown</b> (closing fills not read: see the Binance app)"
        else:
            result = (f"{number(trade.exit_price)} · <b>{money(trade.net, signed=True)}</b> "
                      f"USDT ({percent(trade.net_fraction)})")
            if trade.unvalued_fees:
                result += f" before {escape(trade.unvalued_fees)} of fees not valued in USDT"
        lines.append(
            f"{trade.closed_at:%m-%d %H:%M} <b>{escape(trade.symbol)}</b> {escape(trade.side)} "
            f"{number(trade.quantity)} · {number(trade.entry_price)} → {result} · "
            f"{escape(trade.reason)} · {duration(trade.closed_at - trade.opened_at)}")
    return "\n".join(lines)


def format_logs(logs: list[LogLine]) -> str:
    if not logs:
        return "<b>Logs</b>: no warnings or errors since the agent started"
    lines = [f"<b>Last {plural(len(logs), 'warning or error', 'warnings and errors')}</b>"]
    lines += [f"{line.at:%d %b %H:%M:%S} {LEVEL_MARK.get(line.level, '•')} "
              f"<i>{escape(line.origin)}</i>: {escape(line.message)}" for line in logs]
    return "\n".join(lines)


def format_settings(settings: dict[str, str]) -> str:
    lines = [f"{name}={value}" for name, value in sorted(settings.items())]
    return "<b>Configuration</b> (secrets masked)\n<pre>" + escape("\n".join(lines)) + "</pre>"


HISTORY_VIEWS: list[tuple[str, Callable[[CommandResult], str]]] = [
    ("balance", lambda result: format_balance(result.balance)),           # type: ignore[arg-type]
    ("table", lambda result: format_table(result.table)),                 # type: ignore[arg-type]
    ("performance", lambda result: format_performance(result.performance)),  # type: ignore[arg-type]
    ("trades", lambda result: format_trades(result.trades)),              # type: ignore[arg-type]
    ("logs", lambda result: format_logs(result.logs)),                    # type: ignore[arg-type]
    ("settings", lambda result: format_settings(result.settings)),        # type: ignore[arg-type]
]
