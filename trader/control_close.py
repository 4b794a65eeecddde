"""/close (and the flatten of /shutdown): each symbol closed at market inside its own
boundary, every step reported as the exchange confirmed it. A position the agent does not
manage (opened by hand) is taken over to be closed; an entry whose answer was lost is
settled first, a maker-first entry still quoting is stopped (its quote cancelled, what
filled closed); a close held back by the exchange's Retry-After says when it is sent."""

import math
from datetime import datetime, timedelta

from trader.close_hold import QUOTE_CANCEL_WAIT, CloseHold
from trader.close_record import exit_text
from trader.close_retry import BACKOFF
from trader.commands import ALL_SYMBOLS, Command, CommandResult
from trader.display import duration, money, plural, price, quantity
from trader.domain import ZERO, CloseReason
from trader.engine import Engine
from trader.events import CloseRequested
from trader.market_exit import NOT_READ_BACK, exits_unanswered
from trader.observe import SymbolView
from trader.position import CloseRefusedForNow, Position, PositionState
from trader.trade_history import trade_net
from trader.views import closable, symbol_rules


async def close_positions(engine: Engine, command: Command) -> CommandResult:
    """Close at market; each symbol inside its own boundary, every step reported. Not ok
    when a position is still open afterwards (its line says what protects it and what to
    do) or a close failed on something unexpected."""
    # every traded symbol (each read fresh), and those not traded with a position shown
    symbols = [*engine.symbols, *(s for s in closable(engine, ALL_SYMBOLS)
                                  if s not in engine.symbols)] \
        if command.symbol in (None, ALL_SYMBOLS) else [command.symbol]
    lines: list[str] = []
    ok, finishing, failed = True, 0, 0     # finishing: not done, the agent goes on by itself
    for symbol in symbols:
        done = await engine.contained(f"close {symbol}", close_one(engine, command, symbol),
                                      symbol)
        if done is None:
            ok, failed = False, failed + 1
            finishing += _held_back(engine, symbol)
            lines += close_failed(engine, command, symbol)
        else:
            lines += done
            left = engine.positions.get(symbol)    # still open, or an entry not filled yet
            if left is not None and left.state is not PositionState.CLOSED:
                ok, failed = False, failed + 1
                finishing += goes_on(engine, left, done)
    return CommandResult(ok, lines or ["no open positions"],
                         waiting=failed > 0 and finishing == failed)


async def close_one(engine: Engine, command: Command, symbol: str,
                     reason: CloseReason = CloseReason.COMMAND) -> list[str]:
    position = engine.positions.get(symbol)
    taken: list[str] = []
    if position is not None and position.state is PositionState.ENTERING \
            and engine.entries.maker.handles(position):
        return await _stop_quoting(engine, command, position, reason)
    if position is not None and position.state is PositionState.ENTERING:
        # the phone's reply says what the entry did; a shell's request leaves it to the alert
        position, taken = await _settle_entry(engine, position,
                                              in_reply=command.source == "telegram")
        if position is None or not position.state.open:
            return taken
    if position is None or not position.state.open:
        if not await engine.take_in(symbol):        # a symbol not traded: its rules
            return [f"{symbol}: not a symbol Binance USD-M futures lists; nothing closed"]
        view = await engine.view.view(symbol, fresh=True)
        if view.position.side is None:
            return [_flat_line(engine, symbol)] if command.symbol not in (None, ALL_SYMBOLS) \
                else []
        # Opened outside the agent, and no tick adopted it (yet, or ever: adoption off):
        # adopted now (and protected, should the close fail) so that the close asked for
        # happens; README: /close is the remedy for a position the agent does not track.
        if await engine.adopt(symbol, view, to_close=True) is None:
            return [f"{symbol}: no open position"]     # it closed meanwhile
        taken = [f"{symbol}: the {view.position.side.label} on the exchange was not managed "
                 "by the agent; taken over to close it"]
    if position is not None and position.state.open and engine.entries.maker.handles(position):
        view = await engine.view.view(symbol, fresh=True)
        if engine.entries.entry_working(position, view):
            return await _quote_then_close(engine, command, position, view, reason)
    notes = await engine.close(symbol, reason)
    return [*taken, *notes, _final_line(engine, command, symbol, notes)]


# A close this recent is the one the operator did not see coming: the stop filled while the
# confirmation waited for the tap (it lives 60 s), or while the message was typed.
RECENT_CLOSE = timedelta(minutes=15)
CLOSED_BY = {CloseReason.STOP_LOSS: "by its stop-loss", CloseReason.TAKE_PROFIT: "by its take-profit",
             CloseReason.TRAILING_STOP: "by its trailing stop",
             CloseReason.BREAKEVEN_STOP: "by its stop at breakeven",
             CloseReason.TIME_EXIT: "by the time exit", CloseReason.SIGNAL_CLOSE:
             "on an opposite signal", CloseReason.MANUAL: "by hand on the exchange",
             CloseReason.COMMAND: "by a /close", CloseReason.EMERGENCY: "by a flatten",
             CloseReason.LIQUIDATION: "by a liquidation", CloseReason.ADL: "by auto-deleveraging",
             CloseReason.SETTLEMENT: "by the exchange's settlement"}


def _flat_line(engine: Engine, symbol: str) -> str:
    """Nothing open on `symbol`: "already closed 20 s ago by its stop-loss at 49,500" when it
    closed lately (the answer to a /close that came too late), else "no open position"."""
    now = engine.clock.now()
    closes = [p for p in engine.store.closed_since(now - RECENT_CLOSE) if p.symbol == symbol]
    if not closes:
        return f"{symbol}: no open position"
    last = max(closes, key=lambda p: p.closed_at or now)
    when = f"{duration(now - last.closed_at)} ago" if last.closed_at else "just now"
    by = CLOSED_BY.get(last.close_reason, "") if last.close_reason else ""
    rules = symbol_rules(engine, symbol)
    at = exit_text(last, rules.tick_size if rules else None)
    return (f"{symbol}: already closed {when}{' ' + by if by else ''}{at}; nothing left "
            "to close")


async def _settle_entry(engine: Engine, entering: Position,
                        in_reply: bool) -> tuple[Position | None, list[str]]:
    """An entry whose answer was lost (or a maker entry still working): asked by client id
    now, the way the next tick would (PositionKeeper.protect), so that a /close acts on
    what it really is. The position after that, and a line saying what the entry did;
    `in_reply`: that line reaches the operator, so ENTRY_NOT_FILLED is not sent again."""
    symbol, label = entering.symbol, entering.side.label
    view = await engine.view.view(symbol, fresh=True)
    position = await engine.protect(entering, view, entry_in_reply=in_reply)
    if position is None:
        return None, [f"{symbol}: the {label} entry whose answer was lost did not fill; "
                      "nothing is open"]
    if position.state is PositionState.ENTERING:
        return position, [f"{symbol}: the {label} entry is not filled yet (the order is "
                          "followed by its id); nothing to close now: /status shows it"]
    rules = symbol_rules(engine, symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    return position, [f"{symbol}: the {label} entry whose answer was lost filled "
                      f"({quantity(position.quantity, step)} at "
                      f"{price(position.entry_price, tick)}); closing it"]


async def _stop_quoting(engine: Engine, command: Command, entering: Position,
                        reason: CloseReason) -> list[str]:
    """A maker-first entry still quoting: the operator wants out, so nothing more is
    bought. The close is journaled on the entering record first (trader/lifecycle.py
    ENTERING*: a restart gives the quotes up too), then its quotes take their step now, the
    way the next tick would: they give up (trader/maker_quoter.py: cancel -> verify, a fill
    that raced the cancel counted), and what filled is closed at market with no legs placed
    for it. What was cancelled and what was closed, in the operator's words."""
    symbol, label = entering.symbol, entering.side.label
    quote = entry_quote(engine, entering)
    position = await engine.interpreter.apply(entering, CloseRequested(reason))
    view = await engine.view.view(symbol, fresh=True)
    notes: list[str] = []
    left = await engine.protect(position, view, notes,
                                entry_in_reply=command.source == "telegram")
    record = left or engine.store.position(symbol, entering.key)
    rules = symbol_rules(engine, symbol)
    step = rules.step_size if rules else None
    if left is not None and not engine.entries.maker.quoting_over(left):
        # its cancel unanswered or read back live: nothing is closed before it is known
        # gone (trader/close_hold.py), and the reply says no more than is known
        so_far = f"; {quantity(left.quantity, step)} filled so far, with no stop-loss " \
            "meanwhile" if left.state is not PositionState.ENTERING else ""
        return [f"{symbol}: the {label} maker entry is being stopped: its quote {quote} is "
                f"not known cancelled yet (Binance has not told){so_far}; the agent cancels "
                "it once Binance does, closes at market whatever filled and buys nothing "
                f"more ({HOLD_LIMIT}): /status shows it"]
    filled = (record.traded_quantity or record.quantity) if record is not None else ZERO
    if filled <= 0:
        return [f"{symbol}: the {label} maker entry is stopped: its quote {quote} was "
                "cancelled; nothing had filled, nothing is open"]
    planned = entering.initial_quantity or entering.quantity
    return [f"{symbol}: the {label} maker entry is stopped: its quote {quote} was cancelled "
            f"after {quantity(filled, step)} of {quantity(planned, step)} filled; closing "
            "that part at market", *notes, _final_line(engine, command, symbol, notes)]


async def _quote_then_close(engine: Engine, command: Command, position: Position,
                            view: SymbolView, reason: CloseReason) -> list[str]:
    """An open position (filled in part) whose maker quote still works: the close is
    journaled first (CLOSING, no order yet: trader/lifecycle.py `quotes_first`; a restart
    gives the quote up too), then the position's step runs now, the way the next tick
    would: the quote given up (cancel -> verify), then the close sent for what is held, so
    that no fill of the quote can come after the close."""
    symbol, quote = position.symbol, entry_quote(engine, position)
    closing = await engine.interpreter.apply(position, CloseRequested(reason,
                                                                      quotes_first=True))
    notes: list[str] = []
    left = await engine.protect(closing, view, notes)
    if not engine.entries.maker.quoting_over(closing):
        # its cancel unanswered or read back live: the close waits (trader/close_hold.py)
        said = (f"{symbol}: its quote {quote} is not known cancelled yet: the agent cancels "
                "it once Binance tells, and buys nothing more")
        if left is not None and CloseHold.waits_for_quote(left):
            return [said, *notes, _still_open_line(
                engine, command, left, 0, f"the market close is sent once the quote is known "
                f"cancelled ({HOLD_LIMIT})")]
        return [said, *notes, _final_line(engine, command, symbol, notes)]
    said = f"{symbol}: the {position.side.label} maker entry is stopped: its quote {quote} " \
        "was cancelled before the close"
    return [said, *notes, _final_line(engine, command, symbol, notes)]


# How long a close waits for its maker quote, in the reply's words
HOLD_LIMIT = (f"after {duration(QUOTE_CANCEL_WAIT)} without Binance's word the close is "
              "sent anyway")


def entry_quote(engine: Engine, position: Position) -> str:
    """The client id of a maker-first entry's latest order (its quote), for a reply."""
    intents = engine.entries.maker.entry_intents(position)
    return intents[-1].client_id if intents else "(none sent)"


def open_position(engine: Engine, symbol: str) -> Position | None:
    position = engine.positions.get(symbol)
    return position if position is not None and position.state.open else None


def _final_line(engine: Engine, command: Command, symbol: str, notes: list[str]) -> str:
    position = open_position(engine, symbol)
    if position is not None:
        closes = sum(1 for note in notes if note.startswith(f"{symbol}: market close "))
        if position.state is PositionState.CLOSING and position.close_refused is not None:
            return _still_open_line(engine, command, position, closes,
                                    _refused_next(position.close_refused, engine.clock.now()))
        unread = _unread(position, notes)
        return _still_open_line(engine, command, position, closes, IN_FLIGHT_NEXT
                                if exits_unanswered(engine.store, position) else UNREAD_NEXT
                                if unread else None, known=not unread)
    closed = engine.store.closed_positions()
    last = next((p for p in reversed(closed) if p.symbol == symbol), None)
    if last is None or last.exit_price is None:
        return f"{symbol}: closed"
    rules = symbol_rules(engine, symbol)
    net = trade_net(last, engine.store.funding_payments(last.opened_at))
    exit = exit_text(last, rules.tick_size if rules else None)
    pnl = f"PnL {money(net, signed=True)} USDT net of fees and funding; no orders left"
    reason = last.close_reason
    by = CLOSED_BY.get(reason) if reason is not None and reason not in _ASKED else None
    if by is not None:      # it went before the close asked for (the stop filled meanwhile)
        return f"{symbol}: already closed {by}{exit}, before the market close; {pnl}"
    return f"{symbol}: closed{exit}, {pnl}"


# The reasons of a close this command (or a flatten) made itself.
_ASKED = frozenset({CloseReason.COMMAND, CloseReason.EMERGENCY, None})


# A close whose answer was lost (trader/market_exit.py `flatten`): never sent blind.
IN_FLIGHT_NEXT = ("its answer was lost: the agent asks Binance for that close by its id and, "
                  "once it is known not to have landed, sends it again by itself (never twice)")


# A close taken whose read-back the exchange did not answer (trader/market_exit.py): the
# position stays CLOSING and the ticks finish it.
UNREAD_NEXT = ("the agent reads the position again and closes whatever is left by itself; "
               "the CLOSE alert says when it is closed")


def _refused_next(refused: CloseRefusedForNow, now: datetime) -> str:
    """A close Binance refuses for now (trader/close_retry.py): the agent sends it again."""
    wait = max(0, math.ceil((refused.next_at - now).total_seconds()))
    return (f"⏳ waiting: Binance refuses for now ({refused.reason}); retrying by itself "
            f"(next in {wait} s, then up to every {BACKOFF[-1]:g} s) until Binance takes it; "
            "the CLOSE alert says when it is closed")


def _unread(position: Position, notes: list[str]) -> bool:
    """The close's result is not known: the position could not be read back after it."""
    unread = f"{position.symbol}: {NOT_READ_BACK}"
    return position.state is PositionState.CLOSING \
        and any(note.startswith(unread) for note in notes)


def goes_on(engine: Engine, position: Position, notes: list[str]) -> bool:
    """A close not finished that the agent finishes by itself (the answer "waiting"): one
    whose answer was lost, or whose result could not be read back (`notes`: what the
    command did), or that Binance refuses for now (sent again on a backoff)."""
    return bool(exits_unanswered(engine.store, position)) or _unread(position, notes) \
        or (position.state is PositionState.CLOSING and position.close_refused is not None)


def _held_back(engine: Engine, symbol: str) -> bool:
    """A close that only waits out the exchange's Retry-After: nothing is sent while the
    circuit is open; the first tick after it sends the close again (trader/lifecycle_tick.py,
    CLOSING on a Tick), with no second /close needed."""
    position = open_position(engine, symbol)
    return position is not None and position.state is PositionState.CLOSING \
        and _circuit_ends(engine) is not None


def close_failed(engine: Engine, command: Command, symbol: str) -> list[str]:
    """A close (or flatten) that raised: the error, and what is open now, if anything."""
    failed = f"{symbol}: close failed: {engine.last_error}"
    position = open_position(engine, symbol)
    if position is None:
        return [f"{failed}; {_retry_hint(command, symbol)} (/status shows what is open)"]
    resumes = _circuit_ends(engine)
    if _held_back(engine, symbol) and resumes is not None:
        return [f"{symbol}: close not sent yet: {engine.last_error}",
                _still_open_line(engine, command, position, 0,
                                 f"the close is sent again at {resumes:%H:%M:%S} UTC, when "
                                 "the exchange's wait ends (nothing is sent before)")]
    return [failed, _still_open_line(engine, command, position, 0)]


def _circuit_ends(engine: Engine) -> datetime | None:
    """When the exchange's Retry-After window ends, if it is open now."""
    circuit = engine.exchange.circuit()
    return circuit.open_until if circuit.is_open(engine.clock.now()) else None


def _still_open_line(engine: Engine, command: Command, position: Position,
                     closes: int, next_step: str | None = None, known: bool = True) -> str:
    """"BTCUSDT: still open (0.1) after 3 market closes, protected by its stop-loss at
    49,000; run `tradebot shutdown --flatten` again or close it in the Binance app".
    `next_step` replaces the advice when the agent goes on by itself; not `known`: the
    position could not be read after the close ("not known closed yet (0.1 before it)")."""
    symbol = position.symbol
    rules = symbol_rules(engine, symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    after = f" after {plural(closes, 'market close')}" if closes else ""
    stop = position.stop.order
    cover = f"protected by its stop-loss at {price(stop.trigger_price, tick)}" \
        if stop is not None and position.stop.covers(position.quantity) \
        else "NOT protected: no stop-loss on the exchange right now"
    size = quantity(position.quantity, step)
    held = f"still open ({size}){after}" if known else f"not known closed yet ({size} before " \
        f"{plural(closes, 'market close') if closes > 1 else 'the market close'})"
    return f"{symbol}: {held}, {cover}; {next_step or _retry_hint(command, symbol)}"


def _retry_hint(command: Command, symbol: str) -> str:
    """What to do next, in the words of the one who asked: a shell user may have no
    Telegram, and `tradebot` from a shell only knows shutdown and wake."""
    again = "run `tradebot shutdown --flatten` again" if command.source == "cli" \
        else f"send /close {symbol} again"
    return f"{again} or close it in the Binance app"
