"""The bot's commands: one table (name, what it asks of the engine, usage, help group) and
the parsing of a command line against it.

A line that does not fit is refused with a one-line `UsageError` (what is wrong, then the
usage), before anything reaches the engine. Symbols are matched case-insensitively against
the traded ones; counts are bounded so an answer stays readable on a phone.

    request = parse_command("pause", ["btcusdt", "2h"], ["BTCUSDT"])
    # Request(name="pause", kind=CommandKind.PAUSE, symbol="BTCUSDT", duration=2 h)
"""

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from trader.commands import ALL_SYMBOLS, CommandKind


class Args(StrEnum):
    """What a command accepts after its name."""
    NONE = "none"
    PERIOD = "period"              # [day|week|month|all]
    COUNT = "count"                # [n]
    SYMBOL = "symbol"              # SYMBOL (required)
    SYMBOL_OR_ALL = "symbol|all"   # SYMBOL|all (required)
    MAYBE_SYMBOL = "[symbol]"      # [SYMBOL]
    PAUSE = "pause"                # [SYMBOL] [duration]
    SYMBOL_PRICE = "symbol price"  # SYMBOL PRICE (both required)
    # /start's deep-link payload (t.me/<bot>?start=<payload> sends "/start <payload>":
    # https://core.telegram.org/bots/features#deep-linking): read, not used
    DEEP_LINK = "[payload]"


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    kind: CommandKind | None       # None: answered by the bot itself (/help)
    args: Args
    usage: str
    about: str                     # one line for /help and Telegram's command menu
    group: str
    menu: bool = True              # aliases (/profit) and /start stay out of the menu
    max_count: int = 0             # Args.COUNT: the largest n


COMMANDS = [
    Spec("status", CommandKind.STATUS, Args.NONE, "/status",
         "positions with PnL %, SL/TP distance, time in trade; guards", "Watch"),
    Spec("positions", CommandKind.POSITIONS, Args.NONE, "/positions", "open positions", "Watch"),
    Spec("balance", CommandKind.BALANCE, Args.NONE, "/balance",
         "wallet, equity, free margin, today's PnL", "Watch"),
    Spec("alerts", CommandKind.ALERTS, Args.NONE, "/alerts", "recent alerts", "Watch"),
    Spec("logs", CommandKind.LOGS, Args.COUNT, "/logs [n]", "recent warnings and errors",
         "Watch", max_count=50),
    Spec("pnl", CommandKind.PNL, Args.PERIOD, "/pnl [day|week|month|all]",
         "realised PnL net of fees and funding", "Results"),
    Spec("profit", CommandKind.PNL, Args.PERIOD, "/profit [day|week|month|all]",
         "same as /pnl", "Results", menu=False),
    Spec("daily", CommandKind.DAILY, Args.COUNT, "/daily [n]", "PnL per day (last n days)",
         "Results", max_count=90),
    Spec("weekly", CommandKind.WEEKLY, Args.COUNT, "/weekly [n]", "PnL per week",
         "Results", max_count=52),
    Spec("monthly", CommandKind.MONTHLY, Args.COUNT, "/monthly [n]", "PnL per month",
         "Results", max_count=24),
    Spec("performance", CommandKind.PERFORMANCE, Args.NONE, "/performance",
         "PnL per symbol", "Results"),
    Spec("trades", CommandKind.TRADES, Args.COUNT, "/trades [n]", "last closed trades",
         "Results", max_count=50),
    Spec("chart", CommandKind.CHART, Args.MAYBE_SYMBOL, "/chart [SYMBOL]",
         "price, trades, SL/TP, equity", "Results"),
    Spec("long", CommandKind.LONG, Args.SYMBOL, "/long SYMBOL",
         "open a long now (risk-sized, with SL/TP)", "Trade"),
    Spec("short", CommandKind.SHORT, Args.SYMBOL, "/short SYMBOL",
         "open a short now (risk-sized, with SL/TP)", "Trade"),
    Spec("close", CommandKind.CLOSE, Args.SYMBOL_OR_ALL, "/close SYMBOL|all",
         "close at market", "Trade"),
    Spec("sl", CommandKind.SL, Args.SYMBOL_PRICE, "/sl SYMBOL PRICE|auto",
         "move the stop-loss (new stop first); auto: back to the agent's rules", "Trade"),
    Spec("pause", CommandKind.PAUSE, Args.PAUSE,
         "/pause [SYMBOL] [duration, e.g. 30m, 2h, 1d]", "pause new entries", "Trade"),
    Spec("resume", CommandKind.RESUME, Args.MAYBE_SYMBOL, "/resume [SYMBOL]",
         "resume entries", "Trade"),
    Spec("unlock", CommandKind.UNLOCK, Args.SYMBOL, "/unlock SYMBOL",
         "end a symbol's cooldown and breakers", "Trade"),
    Spec("shutdown", CommandKind.SHUTDOWN, Args.NONE, "/shutdown",
         "sleep (flatten or keep protected)", "Agent"),
    Spec("wake", CommandKind.WAKE, Args.NONE, "/wake", "reconcile, then trade again", "Agent"),
    Spec("version", CommandKind.VERSION, Args.NONE, "/version", "what is running", "Agent"),
    Spec("config", CommandKind.CONFIG, Args.NONE, "/config", "settings (secrets masked)",
         "Agent"),
    Spec("start", CommandKind.STATUS, Args.DEEP_LINK, "/start", "short status and this list",
         "Agent", menu=False),
    Spec("help", None, Args.NONE, "/help", "this list", "Agent"),
]
SPECS = {spec.name: spec for spec in COMMANDS}
USAGE = {spec.name: spec.usage for spec in COMMANDS}
HELP_GROUPS = ("Watch", "Results", "Trade", "Agent")
PNL_PERIODS = ("day", "week", "month", "all")
MAX_PAUSE = timedelta(days=30)
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
_PRICE = re.compile(r"^\d{1,12}(\.\d{1,12})?$")
# A comma read as a thousands separator only where it cannot be a decimal comma: two
# groups or more ("1,234,567"), or one before a decimal dot ("49,300.5"). "0,61" is 0.61 on
# a European phone (dropping the comma read 61), and "1,234" may be 1.234: the prompt would
# show it back as "1,234", confirmed by the person who meant 1.234.
_THOUSANDS = re.compile(r"^[1-9]\d{0,2}((,\d{3}){2,}(\.\d+)?|,\d{3}\.\d+)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def usage_text(usage: str, problem: str = "") -> str:
    prefix = f"{html.escape(problem, quote=False)}. " if problem else ""
    return f"{prefix}Usage: {html.escape(usage, quote=False)}"


class UsageError(ValueError):
    """Bad arguments; the answer is one line: what is wrong and the usage."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem)
        self.text = usage_text(USAGE[name], problem)


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed command line, ready to become a `Command` (or a confirmation prompt)."""
    name: str
    kind: CommandKind | None
    symbol: str | None = None
    duration: timedelta | None = None
    period: str = "day"
    count: int | None = None
    price: Decimal | None = None
    auto: bool = False              # /sl SYMBOL auto: the stop back to the agent's own level


def command_name(text: str) -> str:
    """'/Close@tradebot_bot BTCUSDT' -> 'close', '/status.' -> 'status': the letters, digits
    and underscores after the slash, what Telegram marks as the bot_command entity
    (https://core.telegram.org/bots/api#messageentity) and python-telegram-bot routes by."""
    match = _COMMAND.match(text.strip())
    return match.group(1).lower() if match else ""


_COMMAND = re.compile(r"/([A-Za-z0-9_]*)")


def parse_duration(text: str) -> timedelta:
    """'30m', '2h', '1d' -> timedelta (1 minute to 30 days); ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not timedelta(minutes=1) <= span <= MAX_PAUSE:
        raise ValueError("a pause lasts from 1m to 30d")
    return span


def parse_command(name: str, args: list[str], symbols: list[str]) -> Request:
    """Check one command line against what the command accepts; UsageError if it does not fit."""
    spec = SPECS[name]
    if spec.args is Args.DEEP_LINK:
        return Request(name, spec.kind)
    most = {Args.NONE: 0, Args.PAUSE: 2, Args.SYMBOL_PRICE: 2}.get(spec.args, 1)
    if len(args) > most:
        raise UsageError(name, f"/{name} takes no arguments" if most == 0 else "too many words")
    if spec.args in (Args.SYMBOL, Args.SYMBOL_OR_ALL) and not args:
        raise UsageError(name, "name one symbol or all" if spec.args is Args.SYMBOL_OR_ALL
                         else "name one symbol")
    request = Request(name, spec.kind)
    if spec.args is Args.PERIOD:
        return _with_period(request, args)
    if spec.args is Args.COUNT:
        return _with_count(request, args, spec.max_count)
    if spec.args is Args.PAUSE:
        return _pause(request, args, symbols)
    if spec.args is Args.SYMBOL_PRICE:
        return _symbol_and_price(request, args, symbols)
    if args and spec.kind is CommandKind.CLOSE:
        return Request(name, spec.kind, symbol=_symbol_to_close(name, args[0], symbols))
    if args:
        symbol = _symbol(name, args[0], symbols, allow_all=spec.args is Args.SYMBOL_OR_ALL)
        return Request(name, spec.kind, symbol=symbol)
    return request


# What Binance's USD-M symbols are made of (BTCUSDT, 1000PEPEUSDT, BTCUSDT_250328)
_SYMBOL_SHAPE = re.compile(r"[A-Z0-9_]{2,30}")


def _symbol_to_close(name: str, text: str, symbols: list[str]) -> str:
    """A traded symbol or all, or any symbol: /close also closes a position on a symbol the
    agent does not trade (opened by hand); the engine answers "nothing to close" when the
    exchange shows none there."""
    if text.upper() == ALL_SYMBOLS or any(s.upper() == text.upper() for s in symbols):
        return _symbol(name, text, symbols, allow_all=True)
    if _SYMBOL_SHAPE.fullmatch(text.upper()):
        return text.upper()
    return _symbol(name, text, symbols)


def _with_period(request: Request, args: list[str]) -> Request:
    period = args[0].lower() if args else "day"
    if period not in PNL_PERIODS:
        raise UsageError(request.name, f"unknown period {args[0][:32]}")
    return Request(request.name, request.kind, period=period)


def _with_count(request: Request, args: list[str], most: int) -> Request:
    if not args:
        return request
    text = args[0]
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= most:
        raise UsageError(request.name, f"n is a number from 1 to {most}, not {text[:32]}")
    return Request(request.name, request.kind, count=int(text))


def _pause(request: Request, args: list[str], symbols: list[str]) -> Request:
    """[SYMBOL] [duration], in either order."""
    symbol: str | None = None
    span: timedelta | None = None
    for word in args:
        if _DURATION.match(word.strip().lower()):
            if span is not None:
                raise UsageError(request.name, "one duration only")
            try:
                span = parse_duration(word)
            except ValueError as exc:
                raise UsageError(request.name, str(exc)) from None
        elif symbol is None and any(word.upper() == s.upper() for s in symbols):
            symbol = _symbol(request.name, word, symbols)
        elif symbol is None and not any(c.isdigit() for c in word):
            symbol = _symbol(request.name, word, symbols)   # names the unknown symbol
        else:
            raise UsageError(request.name, f"{word[:32]!r} is not a duration like 30m, 2h or 1d")
    return Request(request.name, request.kind, symbol=symbol, duration=span)


def _symbol_and_price(request: Request, args: list[str], symbols: list[str]) -> Request:
    """SYMBOL PRICE: a positive price, digits and one dot ("99400", "0.5123"); commas only
    where they cannot be a decimal comma ("1,234,567", "99,400.5": `_THOUSANDS`). SYMBOL
    auto (any case): the stop back to the agent's own level."""
    if len(args) < 2:
        raise UsageError(request.name, "name the symbol and the new stop price (or auto: "
                                       "back to the agent's level)")
    symbol = _symbol(request.name, args[0], symbols)
    if args[1].lower() == "auto":
        return Request(request.name, request.kind, symbol=symbol, auto=True)
    if "," in args[1] and not _THOUSANDS.match(args[1]):
        raise UsageError(request.name, f"{args[1][:32]} is not a price: write it with "
                                       "digits and a dot for decimals, no comma (49300, 0.61)")
    text = args[1].replace(",", "")
    try:
        value = Decimal(text) if _PRICE.match(text) else None
    except InvalidOperation:
        value = None
    if value is None or not value > 0:
        raise UsageError(request.name, f"{args[1][:32]} is not a price")
    return Request(request.name, request.kind, symbol=symbol, price=value)


def _symbol(name: str, text: str, symbols: list[str], allow_all: bool = False) -> str:
    if allow_all and text.upper() == ALL_SYMBOLS:
        return ALL_SYMBOLS
    for symbol in symbols:
        if symbol.upper() == text.upper():
            return symbol
    raise UsageError(name, f"unknown symbol {text[:32]} (trading {', '.join(symbols)})")
