"""Compact HTML messages for Telegram: status, positions, alerts, results, /start and /help.

Pure functions from the engine's views to Telegram HTML (the history tables are in
bot/format_history.py). Numbers, durations and plurals read as `trader.display` writes them,
the same as in the alerts. Every value that did not come from this module goes through
`escape` (bot/telegram_text.py, which also splits long answers under Telegram's limit).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from bot.format_history import HISTORY_VIEWS, format_pnl
from bot.parsing import COMMANDS, HELP_GROUPS
from bot.telegram_text import TELEGRAM_LIMIT as TELEGRAM_LIMIT
from bot.telegram_text import escape as escape
from bot.telegram_text import plain_text as plain_text
from bot.telegram_text import split_message as split_message
from bot.telegram_text import utf16_length as utf16_length
from trader.alerts import OutgoingAlert
from trader.commands import AlertView, CommandKind, CommandResult, PositionView, StatusView
from trader.display import duration, money, number, percent, plural

# An equity read this recently goes without its age on /status (the balance is read again
# at most a minute apart while streaming: trader/balance_keeper.py)
EQUITY_FRESH = timedelta(seconds=10)
SEVERITY_MARK = {"CRITICAL": "🚨", "WARN": "⚠️", "INFO": "ℹ️"}

# Telegram's command menu (setMyCommands): every command but the aliases and /start.
HELP_LINES = [(spec.name, spec.about) for spec in COMMANDS if spec.menu]


# --- times ---------------------------------------------------------------------------
def clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


def stamp(moment: datetime) -> str:
    return moment.strftime("%d %b %H:%M:%S UTC")


# --- views ----------------------------------------------------------------------------
def format_position(position: PositionView) -> list[str]:
    """Two lines: size, entry -> mark, PnL and its %, time in trade; then SL and TP with
    how far the mark has to move to reach each, the state and the leverage. A third while
    the size is the user-data stream's word alone (told inside an IP ban)."""
    pnl = money(position.unrealized_pnl, signed=True)
    held = f" · {duration(position.age)}" if position.age is not None else ""
    if not position.managed:
        return [
            f"<b>{escape(position.symbol)}</b> {escape(position.side)} "
            f"{number(position.quantity)} @ {number(position.entry_price)} → "
            f"{number(position.mark_price)}  PnL <b>{pnl}</b> ({percent(position.pnl_fraction)})",
            f"  {_leg('SL', position, position.stop_trigger, position.stop_attached)} · "
            f"<b>not managed by the agent</b>{_seen(position.seen_ago)}"]
    return [
        f"<b>{escape(position.symbol)}</b> {escape(position.side)} {number(position.quantity)} "
        f"@ {number(position.entry_price)} → {number(position.mark_price)}  PnL <b>{pnl}</b> "
        f"({percent(position.pnl_fraction)}){held}",
        f"  {_leg('SL', position, position.stop_trigger, position.stop_attached)}"
        f"{_unanswered(position.stop_unanswered)}{_moving(position.stop_moving_to)}"
        f"{' ⚠️ past the liquidation price' if position.stop_past_liquidation else ''} · "
        f"{_targets(position)} · {escape(position.state)} · {position.leverage}x",
    ] + (["  📡 size as the user-data stream told it; the position is read again once "
          "requests to the exchange resume"] if position.size_heard else [])


def _seen(ago: timedelta | None) -> str:
    """How old the exchange's word on a position the agent does not follow is."""
    return f" · as the exchange showed it {duration(ago)} ago" if ago is not None else ""


def _unanswered(count: int) -> str:
    """The stop placements Binance has not answered yet (an alert told why, SL_MISSING)."""
    return f" ({plural(count, 'placement')} sent, no answer yet ⏳)" if count else ""


def _moving(level: Decimal | None) -> str:
    return f" → moving to {number(level)} ⏳" if level is not None else ""


def _targets(position: PositionView) -> str:
    """TP, or TP1 and TP2 while the two-TP plan's TP1 has not filled."""
    target = _leg('TP' if position.first_target_trigger is None else 'TP2', position,
                  position.take_profit_trigger, position.take_profit_attached)
    if position.first_target_trigger is None:
        return target
    first = _leg('TP1', position, position.first_target_trigger, position.first_target_attached)
    return f"{first} · {target}"


def _leg(name: str, position: PositionView, price: Decimal | None, attached: bool) -> str:
    if price is None:
        return f"{name} ❌ none"
    move = position.move_to(price)
    away = f" ({percent(move)})" if move is not None else ""
    return f"{name} {number(price)}{away} {'✅' if attached else '❌ not attached'}"


def format_positions(positions: list[PositionView]) -> str:
    if not positions:
        return "<b>Positions</b>: none open"
    lines = [f"<b>Positions ({len(positions)})</b>"]
    for position in positions:
        lines.extend(format_position(position))
    return "\n".join(lines)


def _run_state(status: StatusView) -> str:
    run_state = escape(status.run_state)
    if status.paused_until is not None:
        run_state += f" until {clock_time(status.paused_until)}"
    return run_state


def format_status(status: StatusView) -> str:
    lines = [
        f"<b>tradebot</b> · {escape(status.mode)} · <b>{_run_state(status)}</b> · "
        f"up {duration(status.uptime)}",
        _equity(status),
        format_positions(status.positions),
    ]
    if status.exchange_failures:       # before the positions: their ✅ are from before
        lines.insert(1, f"⚠️ <b>Exchange not answering</b>: "
                        f"{plural(status.exchange_failures, 'failure')} in a row; positions "
                        "and orders below are as last seen")
    if status.regimes:
        lines.append("<b>Regime</b> " + " · ".join(
            f"{escape(symbol)} {escape(regime)}" for symbol, regime in status.regimes.items()))
    lines.append("<b>Breakers</b> " + (", ".join(escape(b) for b in status.breakers) or "none"))
    if status.paused_symbols:
        lines.append("<b>Paused</b> " + ", ".join(
            f"{escape(symbol)} until {clock_time(until) if until else '/resume'}"
            for symbol, until in sorted(status.paused_symbols.items())))
    if status.cooldowns:
        lines.append("<b>Cooldowns</b> " + ", ".join(
            f"{escape(symbol)} until {clock_time(until)}" for symbol, until in status.cooldowns.items()))
    lines += [f"⛔ <b>No entries</b> {escape(block)}" for block in status.entry_blocks]
    if status.save_failures:
        lines.append(f"⚠️ <b>Save failures</b> {status.save_failures}")
    if status.api_circuit:
        lines.append(f"⛔ <b>Exchange API paused</b> {escape(status.api_circuit)}")
    if status.feed:
        lines.append(f"Feed {escape(status.feed)}")
    if status.exchange_outage:         # before the positions, like the failures' line
        lines.insert(1, f"⚠️ <b>Exchange not answering</b>: {escape(status.exchange_outage)}")
    lines.append(f"<b>Last error</b> {_last_error(status)}")
    return "\n".join(lines)


def _last_error(status: StatusView) -> str:
    """The last failure with when it happened ("12:08:46 UTC, 2 min ago: close BTCUSDT:
    ..."): a failure long past reads as past, not as what is going on."""
    if not status.last_error:
        return "none"
    at, now = status.last_error_at, status.now
    if at is None or now is None:
        return escape(status.last_error)
    return f"{at:%H:%M:%S} UTC, {duration(now - at)} ago: {escape(status.last_error)}"


def _equity(status: StatusView) -> str:
    """The equity line; before the start-up read the balance (the exchange down, an IP
    ban waited out), "not read yet", not a 0.00 that reads as an empty account."""
    if status.run_state == "starting" and status.equity_read_at is None:
        return "Equity not read yet (the exchange start-up has not finished)"
    return (f"Equity <b>{money(status.equity)}</b> USDT{_equity_age(status)} · "
            f"free margin {money(status.free_margin)}")


def _equity_age(status: StatusView) -> str:
    """" (read 45 s ago)" when positions are open and the equity was read EQUITY_FRESH or
    longer ago: the PnL lines beside it are at the mark of now, the equity at the marks of
    its read (Binance pushes no balance update when only the price moves). Whatever its age,
    " (read 40 s ago, before the last close)" when a position closed after the read (a
    Retry-After forbids reading it again): its margin still counted used, its result not in.
    """
    read_at, now = status.equity_read_at, status.now
    if read_at is None or now is None:
        return ""
    if status.equity_before_close:
        return f" (read {duration(now - read_at)} ago, before the last close)"
    if not status.positions or now - read_at < EQUITY_FRESH:
        return ""
    return f" (read {duration(now - read_at)} ago)"


def format_start(status: StatusView) -> str:
    """/start's short status: state, equity, open positions, anything blocking entries."""
    lines = [f"<b>tradebot</b> · {escape(status.mode)} · <b>{_run_state(status)}</b> · "
             f"equity <b>{money(status.equity)}</b> USDT · "
             f"{plural(len(status.positions), 'open position')}"]
    lines += [f"{escape(p.symbol)} {escape(p.side)} PnL {money(p.unrealized_pnl, signed=True)} "
              f"({percent(p.pnl_fraction)})" for p in status.positions]
    if status.breakers:
        lines.append("Breakers " + ", ".join(escape(b) for b in status.breakers))
    lines += [f"No entries {escape(block)}" for block in status.entry_blocks]
    return "\n".join(lines)


def format_alerts(alerts: list[AlertView]) -> str:
    if not alerts:
        return "<b>Recent alerts</b>: none"
    lines = [f"<b>Recent alerts ({len(alerts)})</b>"]
    for alert in alerts:
        symbol = f" {escape(alert.symbol)}" if alert.symbol else ""
        lines.append(f"{alert.created_at.strftime('%d %b %H:%M')} "
                     f"{SEVERITY_MARK.get(alert.severity, '•')} <b>{escape(alert.name)}</b>{symbol}: "
                     f"{escape(_one_line(alert.text))}")
    return "\n".join(lines)


def format_alert(alert: OutgoingAlert) -> str:
    """One outbox alert as a message; CRITICAL ones stand out."""
    symbol = f" · {escape(alert.symbol)}" if alert.symbol else ""
    mark = SEVERITY_MARK.get(alert.severity, "•")
    if alert.severity == "CRITICAL":
        title = f"{mark}{mark} <b>CRITICAL: {escape(alert.name)}</b>{symbol} {mark}{mark}"
    else:
        title = f"{mark} <b>{escape(alert.name)}</b>{symbol}"
    return f"{title}\n{escape(alert.text)}\n<i>{stamp(alert.created_at)}</i>"


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.splitlines() if part.strip())


# --- command answers -----------------------------------------------------------------
ACTION_TITLES = {
    CommandKind.CLOSE: "Close", CommandKind.SHUTDOWN: "Shutdown", CommandKind.WAKE: "Wake",
    CommandKind.PAUSE: "Pause", CommandKind.RESUME: "Resume", CommandKind.LONG: "Long",
    CommandKind.SHORT: "Short", CommandKind.UNLOCK: "Unlock", CommandKind.SL: "Stop-loss",
}
# The head of a command not finished that the agent finishes by itself (`waiting`): a close
# or stop move held back, or sent and its answer lost; an entry whose answer was lost is
# known later (the FILL or ENTRY_NOT_FILLED alert says which).
WAITING_TO_SEND = "waiting</b>; sent by itself when the exchange allows"
WAITING = {kind: "outcome unknown</b>; the agent asks Binance and tells you"
           for kind in (CommandKind.LONG, CommandKind.SHORT)}
QUERY_TITLES = {CommandKind.VERSION: "Version", CommandKind.BALANCE: "Balance",
                CommandKind.CHART: "Chart"}


def format_result(kind: CommandKind, result: CommandResult) -> str:
    """The answer to an executed command: the view it asked for, or what was done."""
    if result.duplicate:
        return "Already done: this request was handled before."
    if result.ok:
        view = _view(result)
        if view is not None:
            return view
        if not kind.mutating:
            title = QUERY_TITLES.get(kind, kind.value.capitalize())
            return "\n".join([f"<b>{title}</b>", *(escape(line) for line in result.lines)])
    title = ACTION_TITLES.get(kind, kind.value.capitalize())
    head = f"ℹ️ <b>{title}: nothing to do</b>" if result.ok and result.unchanged else \
        f"✅ <b>{title}: done</b>" if result.ok else \
        f"⏳ <b>{title}: {WAITING.get(kind, WAITING_TO_SEND)}" \
        if result.waiting else f"⚠️ <b>{title}: failed</b>"
    return "\n".join([head, *(escape(line) for line in result.lines)])


def _view(result: CommandResult) -> str | None:
    parts: list[str] = []
    if result.status is not None:
        parts.append(format_status(result.status))
    elif result.positions is not None:
        parts.append(format_positions(result.positions))
    if result.pnl is not None:
        parts.append(format_pnl(result.pnl))
    if result.alerts is not None:
        parts.append(format_alerts(result.alerts))
    parts += [show(result) for field, show in HISTORY_VIEWS if getattr(result, field) is not None]
    if not parts:
        return None
    return "\n".join([*parts, *(escape(line) for line in result.lines)])


def help_text(symbols: list[str], extra: Sequence[tuple[str, str]] = ()) -> str:
    """Every command, grouped as an operator looks for them; `extra` (usage, about) lines
    for commands the bot answers itself (/health) end the last group."""
    lines = ["<b>tradebot commands</b>"]
    for group in HELP_GROUPS:
        lines.append(f"<b>{group}</b>")
        lines += [f"{escape(spec.usage)} · {escape(spec.about)}" for spec in COMMANDS
                  if spec.group == group]
    lines += [f"{escape(usage)} · {escape(about)}" for usage, about in extra]
    lines.append("Symbols: " + escape(", ".join(symbols)))
    return "\n".join(lines)


def start_text(result: CommandResult, symbols: list[str],
               extra: Sequence[tuple[str, str]] = ()) -> str:
    """/start: the short status (when the engine answered one), then /help's list."""
    status = format_start(result.status) if result.ok and result.status is not None \
        else format_result(CommandKind.STATUS, result)
    return f"{status}\n\n{help_text(symbols, extra)}"


def stale_text(sent_at: datetime, age: timedelta) -> str:
    return (f"⏳ This command was sent at {clock_time(sent_at)} and waited {duration(age)} "
            "while the agent was down; it was <b>not</b> executed. Send it again if you still want it.")
