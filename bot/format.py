"""Compact HTML messages for Telegram: status, positions, PnL, alerts, results, help.

Pure functions from the engine's views to Telegram HTML. Every value that did not come from
this module (symbols, error texts, alert texts) goes through `escape`, so a symbol like
`A<B&C` can never break the markup. `split_message` cuts long answers under Telegram's
4096-character limit at line boundaries, keeping tags balanced in every part.
"""

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal

from trader.alerts import OutgoingAlert
from trader.commands import AlertView, CommandKind, CommandResult, PnlView, PositionView, StatusView

TELEGRAM_LIMIT = 4096
SEVERITY_MARK = {"CRITICAL": "🚨", "WARN": "⚠️", "INFO": "ℹ️"}
_TOKEN = re.compile(r"<[^<>]*>|&#?\w+;|[^<&]+|[<&]", re.DOTALL)
_TAG_NAME = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)")

HELP_LINES = [
    ("status", "mode, equity, positions, breakers"),
    ("positions", "open positions with TP/SL"),
    ("pnl", "realised PnL: /pnl day|week|all"),
    ("chart", "equity and drawdown chart"),
    ("alerts", "recent alerts"),
    ("close", "close a position: /close SYMBOL|all"),
    ("shutdown", "sleep (flatten or keep protected)"),
    ("wake", "reconcile, then resume trading"),
    ("pause", "pause entries: /pause [30m|2h|1d]"),
    ("resume", "resume entries"),
    ("help", "this list"),
]


def escape(text: object) -> str:
    """Text safe inside Telegram HTML (<, > and & escaped)."""
    return html.escape(str(text), quote=False)


def plain_text(text: str) -> str:
    """Telegram HTML as the plain text it shows (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^<>]*>", "", text))


def utf16_length(text: str) -> int:
    """Telegram measures messages in UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


# --- numbers and times --------------------------------------------------------------
def money(value: Decimal, signed: bool = False) -> str:
    quantized = value.quantize(Decimal("0.01"))
    return f"{quantized:+,}" if signed else f"{quantized:,}"


def number(value: Decimal) -> str:
    """A price or quantity as given (no trailing zeros), with thousands separators."""
    normal = value.normalize()
    if normal == normal.to_integral():
        normal = normal.quantize(Decimal(1))
    return f"{normal:,f}"


def clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")


def stamp(moment: datetime) -> str:
    return moment.strftime("%d %b %H:%M:%S UTC")


def duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


# --- views ----------------------------------------------------------------------------
def format_position(position: PositionView) -> list[str]:
    pnl = money(position.unrealized_pnl, signed=True)
    return [
        f"<b>{escape(position.symbol)}</b> {escape(position.side)} {number(position.quantity)} "
        f"@ {number(position.entry_price)} → {number(position.mark_price)}  PnL <b>{pnl}</b>",
        f"  {_leg('SL', position.stop_trigger, position.stop_attached)} · "
        f"{_leg('TP', position.take_profit_trigger, position.take_profit_attached)} · "
        f"{escape(position.state)} · {position.leverage}x",
    ]


def _leg(name: str, price: Decimal | None, attached: bool) -> str:
    if price is None:
        return f"{name} ❌ none"
    return f"{name} {number(price)} {'✅' if attached else '❌ not attached'}"


def format_positions(positions: list[PositionView]) -> str:
    if not positions:
        return "<b>Positions</b>: none open"
    lines = [f"<b>Positions ({len(positions)})</b>"]
    for position in positions:
        lines.extend(format_position(position))
    return "\n".join(lines)


def format_status(status: StatusView) -> str:
    run_state = escape(status.run_state)
    if status.paused_until is not None:
        run_state += f" until {clock_time(status.paused_until)}"
    lines = [
        f"<b>tradebot</b> · {escape(status.mode)} · <b>{run_state}</b> · up {duration(status.uptime)}",
        f"Equity <b>{money(status.equity)}</b> USDT · free margin {money(status.free_margin)}",
        format_positions(status.positions),
    ]
    if status.regimes:
        lines.append("<b>Regime</b> " + " · ".join(
            f"{escape(symbol)} {escape(regime)}" for symbol, regime in status.regimes.items()))
    lines.append("<b>Breakers</b> " + (", ".join(escape(b) for b in status.breakers) or "none"))
    if status.cooldowns:
        lines.append("<b>Cooldowns</b> " + ", ".join(
            f"{escape(symbol)} until {clock_time(until)}" for symbol, until in status.cooldowns.items()))
    if status.save_failures:
        lines.append(f"⚠️ <b>Save failures</b> {status.save_failures}")
    if status.api_circuit:
        lines.append(f"⛔ <b>Exchange API paused</b> {escape(status.api_circuit)}")
    if status.feed:
        lines.append(f"Feed {escape(status.feed)}")
    lines.append(f"<b>Last error</b> {escape(status.last_error) if status.last_error else 'none'}")
    return "\n".join(lines)


def format_pnl(pnl: PnlView) -> str:
    return "\n".join([
        f"<b>PnL · {escape(pnl.period)}</b>",
        f"Realised {money(pnl.realized, signed=True)} · fees {money(pnl.fees)} · "
        f"funding {money(pnl.funding, signed=True)}",
        f"Net <b>{money(pnl.net, signed=True)}</b> USDT · {pnl.trades} trades · "
        f"win rate {pnl.win_rate:.0%}",
    ])


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
    CommandKind.PAUSE: "Pause", CommandKind.RESUME: "Resume",
}


def format_result(kind: CommandKind, result: CommandResult) -> str:
    """The answer to an executed command: the view it asked for, or what was done."""
    if result.duplicate:
        return "Already done: this request was handled before."
    if result.ok:
        view = _view(result)
        if view is not None:
            return view
    title = ACTION_TITLES.get(kind, kind.value.capitalize())
    head = f"✅ <b>{title}: done</b>" if result.ok else f"⚠️ <b>{title}: failed</b>"
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
    if not parts:
        return None
    return "\n".join([*parts, *(escape(line) for line in result.lines)])


def help_text(symbols: list[str]) -> str:
    lines = ["<b>tradebot commands</b>"]
    lines.extend(f"/{name}: {escape(what)}" for name, what in HELP_LINES)
    lines.append("Symbols: " + escape(", ".join(symbols)))
    return "\n".join(lines)


def stale_text(sent_at: datetime, age: timedelta) -> str:
    return (f"⏳ This command was sent at {clock_time(sent_at)} and waited {duration(age)} "
            "while the agent was down; it was <b>not</b> executed. Send it again if you still want it.")


def usage_text(usage: str, problem: str = "") -> str:
    prefix = f"{escape(problem)}. " if problem else ""
    return f"{prefix}Usage: {escape(usage)}"


# --- splitting ------------------------------------------------------------------------
def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Parts of `text`, each at most `limit` UTF-16 units, cut at line boundaries when possible.

    Tags open at a cut are closed at the end of the part and reopened in the next, so every
    part is valid HTML on its own. A line longer than a whole part is cut between words
    (between characters inside a very long word), never inside a tag or an entity.
    """
    if utf16_length(text) <= limit:
        return [text]
    splitter = _Splitter(limit)
    for line in text.split("\n"):
        splitter.add_line(_tokens(line))
    return splitter.finish()


class _Splitter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.tokens: list[str] = []
        self.size = 0
        self.open_tags: list[str] = []
        self.at_start = True          # the part holds nothing but reopened tags

    def add_line(self, tokens: list[str]) -> None:
        separator = [] if self.at_start else ["\n"]
        if self._fits(separator + tokens):
            self._push_all(separator + tokens)
            return
        if not self.at_start:
            self._cut()
            if self._fits(tokens):
                self._push_all(tokens)
                return
        for token in tokens:
            if not self._fits([token]) and not self.at_start:
                self._cut()
            self._push_all([token])

    def finish(self) -> list[str]:
        if not self.at_start:
            self._cut()
        return [part for part in self.parts if part.strip()]

    def _fits(self, tokens: list[str]) -> bool:
        tags = self.open_tags
        for token in tokens:
            tags = _after(tags, token)
        added = sum(utf16_length(token) for token in tokens)
        return self.size + added + utf16_length(_closers(tags)) <= self.limit

    def _push_all(self, tokens: list[str]) -> None:
        for token in tokens:
            self.tokens.append(token)
            self.size += utf16_length(token)
            self.open_tags = _after(self.open_tags, token)
        self.at_start = self.at_start and not tokens

    def _cut(self) -> None:
        self.parts.append("".join(self.tokens) + _closers(self.open_tags))
        self.tokens = list(self.open_tags)
        self.size = sum(utf16_length(tag) for tag in self.open_tags)
        self.at_start = True


_WORD = re.compile(r"\S+\s*|\s+")
LONG_WORD = 64


def _tokens(text: str) -> list[str]:
    """Tags and entities whole, text word by word (very long words character by character)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token[0] in "<&":
            tokens.append(token)
            continue
        for word in _WORD.findall(token):
            tokens.extend(word if utf16_length(word) > LONG_WORD else [word])
    return tokens


def _after(open_tags: list[str], token: str) -> list[str]:
    if not token.startswith("<") or not _TAG_NAME.match(token):
        return open_tags
    if token.startswith("</"):
        return open_tags[:-1]
    return [*open_tags, token]


def _closers(open_tags: list[str]) -> str:
    names = [_TAG_NAME.match(tag) for tag in reversed(open_tags)]
    return "".join(f"</{name.group(1)}>" for name in names if name)
