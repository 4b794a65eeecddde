"""Operator commands: queries answered at once from the engine's view (trader/views.py),
actions queued and run between ticks by the single writer (close, shutdown, wake, pause,
resume, long, short, unlock), and a `tradebot shutdown|wake` relayed from a shell through
the database.

    controller = Controller(engine)          # what the Telegram bot talks to
    result = await controller.execute(Command(CommandKind.CLOSE, "tg:1:42", now, symbol="BTCUSDT"))
    await controller.process()               # in the engine's loop, between ticks

Every action reports exactly what was done, one fact per line; nothing is claimed that the
exchange did not confirm. A command that fails answers what happened, never silence.
"""

import asyncio
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from storage import SaveStateFailure
from trader import guards
from trader.alerts import Alert, AlertName
from trader.chart_view import answer_chart
from trader.cli_mailbox import CLI_REQUEST_KEY, answer_key
from trader.commands import ALL_SYMBOLS, Command, CommandKind, CommandResult
from trader.display import duration, money, plural, price, quantity
from trader.domain import CloseReason, OrderRole, Side
from trader.engine import Engine
from trader.position import Leg, Position, PositionState
from trader.startup import read_balance, reconcile
from trader.trade_history import trade_net
from trader.views import answer_query, closable, symbol_rules

# A queued command that waited longer than the bot waits for its result (bot/handlers.py:
# then "Still running") is not run if it adds risk: the operator was told nothing happened
# yet, and the market moved meanwhile. Closing and sleeping, late, are still what was asked.
QUEUE_WAIT_LIMIT = 60.0       # seconds
ADDS_RISK = frozenset({CommandKind.LONG, CommandKind.SHORT, CommandKind.WAKE,
                       CommandKind.RESUME, CommandKind.UNLOCK})

Queued = tuple[Command, "asyncio.Future[CommandResult]", float]   # float: monotonic enqueue time


class Controller:
    """The command side of the engine (implements `trader.commands.EngineControl`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[Queued] = asyncio.Queue()
        self.results: dict[str, CommandResult] = {}
        self.queue_wait_limit = QUEUE_WAIT_LIMIT

    @property
    def symbols(self) -> list[str]:
        return self.engine.symbols

    def closable(self, symbol: str) -> list[str]:
        """What a /close of `symbol` (or ALL_SYMBOLS) could act on (trader/views.py)."""
        return closable(self.engine, symbol)

    async def execute(self, command: Command) -> CommandResult:
        """Answer a query now; queue an action for the engine's loop and wait for it."""
        if command.kind is CommandKind.CHART:   # drawn off the loop: ticks go on meanwhile
            return await answer_chart(self.engine, command.symbol)
        if not command.kind.mutating:
            return answer_query(self.engine, command)
        if command.command_id in self.results:
            return replace(self.results[command.command_id], duplicate=True)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        await self.queue.put((command, future, time.monotonic()))
        self.engine.wakeup.set()
        return await future

    async def process(self) -> int:
        """Run queued commands (and a CLI request), each inside its own boundary."""
        await self.engine.contained("cli request", self._take_cli_request())
        done = 0
        while not self.queue.empty():
            command, future, queued_at = self.queue.get_nowait()
            if not future.done():
                waited = time.monotonic() - queued_at
                future.set_result(self._too_late(command, waited) if waited > self.queue_wait_limit
                                  and command.kind in ADDS_RISK else await self.run(command))
            done += 1
        return done

    def _too_late(self, command: Command, waited: float) -> CommandResult:
        logger.warning("command not run: it waited too long kind={} id={} waited_s={:.0f}",
                       command.kind, command.command_id, waited)
        result = CommandResult(False, [
            f"/{command.kind.value} not run: it waited {duration(timedelta(seconds=waited))} "
            f"for the agent (starting, or busy), and the market has moved since; send "
            f"/{command.kind.value} again"])
        self.results[command.command_id] = result
        return result

    async def run(self, command: Command) -> CommandResult:
        if command.command_id in self.results:
            return replace(self.results[command.command_id], duplicate=True)
        engine = self.engine
        # one unit of work, like a tick: committed before each order request and each wait
        # (storage/unit_of_work.py)
        result = await engine.contained(f"command {command.kind.value}",
                                        engine.store.unit_of_work(run_command(engine, command)),
                                        command.symbol or "")
        if result is None:
            result = CommandResult(False, [
                f"{command.kind.value} failed: {engine.last_error}",
                "open positions keep their exchange-side stop-loss and take-profit; "
                "/status shows what is open; send the command again to retry"])
        self.results[command.command_id] = result
        return result

    async def _take_cli_request(self) -> None:
        """A `tradebot shutdown|wake` from a shell on the same disk: run it as our own."""
        store = self.engine.store
        request = store.get(CLI_REQUEST_KEY)
        if not request or store.get(answer_key(request["id"])) is not None:
            return
        command = Command(CommandKind(request["kind"]), f"cli:{request['id']}",
                          self.engine.clock.now(), flatten=bool(request.get("flatten")),
                          source="cli")
        result = await self.run(command)
        try:
            with store.transaction("cli answer"):
                store.put(answer_key(request["id"]), {"ok": result.ok, "lines": result.lines},
                          self.engine.clock.now())
                store.delete(CLI_REQUEST_KEY)
        except SaveStateFailure as exc:   # counted by the store's write health
            logger.error("cli answer not saved error={}", exc)


# --- actions ----------------------------------------------------------------------
async def run_command(engine: Engine, command: Command) -> CommandResult:
    logger.info("command kind={} id={} source={}", command.kind, command.command_id, command.source)
    handler = {
        CommandKind.CLOSE: close_positions,
        CommandKind.SHUTDOWN: shutdown,
        CommandKind.WAKE: wake,
        CommandKind.PAUSE: pause,
        CommandKind.RESUME: resume,
        CommandKind.LONG: enter_by_hand,
        CommandKind.SHORT: enter_by_hand,
        CommandKind.UNLOCK: unlock,
    }[command.kind]
    return await handler(engine, command)


async def close_positions(engine: Engine, command: Command) -> CommandResult:
    """Close at market; each symbol inside its own boundary, every step reported. Not ok
    when a position is still open afterwards (its line says what protects it and what to
    do) or a close failed on something unexpected."""
    symbols = engine.symbols if command.symbol in (None, ALL_SYMBOLS) else [command.symbol]
    lines: list[str] = []
    ok, held_back, failed = True, 0, 0
    for symbol in symbols:
        done = await engine.contained(f"close {symbol}", _close_one(engine, command, symbol),
                                      symbol)
        if done is None:
            ok, failed = False, failed + 1
            held_back += _held_back(engine, symbol)
            lines += _close_failed(engine, command, symbol)
        else:
            lines += done
            left = engine.positions.get(symbol)    # still open, or an entry not filled yet
            ok = ok and (left is None or left.state is PositionState.CLOSED)
    return CommandResult(ok, lines or ["no open positions"],
                         waiting=failed > 0 and held_back == failed)


async def _close_one(engine: Engine, command: Command, symbol: str,
                     reason: CloseReason = CloseReason.COMMAND) -> list[str]:
    position = engine.positions.get(symbol)
    taken: list[str] = []
    if position is not None and position.state is PositionState.ENTERING:
        position, taken = await _settle_entry(engine, position)
        if position is None or not position.state.open:
            return taken
    if position is None or not position.state.open:
        view = await engine.view.view(symbol, fresh=True)
        if view.position.side is None:
            return [f"{symbol}: no open position"] if command.symbol not in (None, ALL_SYMBOLS) \
                else []
        # Opened outside the agent, and no tick adopted it (yet, or ever: adoption off):
        # adopted now (and protected, should the close fail) so that the close asked for
        # happens; README: /close is the remedy for a position the agent does not track.
        if await engine.adopt(symbol, view, to_close=True) is None:
            return [f"{symbol}: no open position"]     # it closed meanwhile
        taken = [f"{symbol}: the {view.position.side.label} on the exchange was not managed "
                 "by the agent; taken over to close it"]
    notes = await engine.close(symbol, reason)
    return [*taken, *notes, _final_line(engine, command, symbol, notes)]


async def _settle_entry(engine: Engine, entering: Position) -> tuple[Position | None, list[str]]:
    """An entry whose answer was lost (or a maker entry still working): asked by client id
    now, the way the next tick would (PositionKeeper.protect), so that a /close acts on
    what it really is. The position after that, and a line saying what the entry did."""
    symbol, label = entering.symbol, entering.side.label
    view = await engine.view.view(symbol, fresh=True)
    position = await engine.protect(entering, view)
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


def _open(engine: Engine, symbol: str) -> Position | None:
    position = engine.positions.get(symbol)
    return position if position is not None and position.state.open else None


def _final_line(engine: Engine, command: Command, symbol: str, notes: list[str]) -> str:
    position = _open(engine, symbol)
    if position is not None:
        closes = sum(1 for note in notes if note.startswith(f"{symbol}: market close "))
        return _still_open_line(engine, command, position, closes)
    closed = engine.store.closed_positions()
    last = next((p for p in reversed(closed) if p.symbol == symbol), None)
    if last is None or last.exit_price is None:
        return f"{symbol}: closed"
    rules = symbol_rules(engine, symbol)
    net = trade_net(last, engine.store.funding_payments(last.opened_at))
    return (f"{symbol}: closed at {price(last.exit_price, rules.tick_size if rules else None)}, "
            f"PnL {money(net, signed=True)} USDT net of fees and funding; no orders left")


def _held_back(engine: Engine, symbol: str) -> bool:
    """A close that only waits out the exchange's Retry-After: nothing is sent while the
    circuit is open; the first tick after it sends the close again (trader/lifecycle.py,
    CLOSING on a Tick), with no second /close needed."""
    position = _open(engine, symbol)
    return position is not None and position.state is PositionState.CLOSING \
        and _circuit_ends(engine) is not None


def _close_failed(engine: Engine, command: Command, symbol: str) -> list[str]:
    """A close (or flatten) that raised: the error, and what is open now, if anything."""
    failed = f"{symbol}: close failed: {engine.last_error}"
    position = _open(engine, symbol)
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
                     closes: int, next_step: str | None = None) -> str:
    """"BTCUSDT: still open (0.1) after 3 market closes, protected by its stop-loss at
    49,000; run `tradebot shutdown --flatten` again or close it in the Binance app".
    `next_step` replaces the advice when the agent goes on by itself."""
    symbol = position.symbol
    rules = symbol_rules(engine, symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    after = f" after {plural(closes, 'market close')}" if closes else ""
    stop = position.stop.order
    cover = f"protected by its stop-loss at {price(stop.trigger_price, tick)}" \
        if stop is not None and position.stop.covers(position.quantity) \
        else "NOT protected: no stop-loss on the exchange right now"
    return (f"{symbol}: still open ({quantity(position.quantity, step)}){after}, {cover}; "
            f"{next_step or _retry_hint(command, symbol)}")


def _retry_hint(command: Command, symbol: str) -> str:
    """What to do next, in the words of the one who asked: a shell user may have no
    Telegram, and `tradebot` from a shell only knows shutdown and wake."""
    again = "run `tradebot shutdown --flatten` again" if command.source == "cli" \
        else f"send /close {symbol} again"
    return f"{again} or close it in the Binance app"


async def shutdown(engine: Engine, command: Command) -> CommandResult:
    """Reconcile, cancel entry orders, optionally flatten, then sleep (protection only).

    Sleep is entered whatever fails on the way; each step is contained and reported. Not ok
    when a flatten was asked and a position is still open (asleep all the same, with that
    position protected as the lines say)."""
    lines = await engine.contained("shutdown reconcile", reconcile(engine)) or []
    for symbol in engine.symbols:
        cancelled = await engine.contained(f"shutdown cancel entries {symbol}",
                                           _cancel_entries(engine, symbol), symbol)
        lines += cancelled if cancelled is not None else [
            f"{symbol}: could not cancel entry orders: {engine.last_error}"]
    if command.flatten:
        lines += await _flatten_all(engine, command)
    engine.guard_state = guards.sleep(engine.guard_state)
    still_open = [p for p in engine.positions.values() if p.state is not PositionState.CLOSED]
    lines.append(_asleep_line(still_open))
    engine.alerter.publish(Alert(AlertName.EMERGENCY_DONE, "\n".join(lines),  # the reply says it
                                 answered_in_reply=command.source == "telegram"), engine.clock.now())
    return CommandResult(not (command.flatten and still_open), lines)


async def _flatten_all(engine: Engine, command: Command) -> list[str]:
    lines: list[str] = []
    for symbol in engine.symbols:
        if _open(engine, symbol) is None:
            continue
        flattened = await engine.contained(
            f"shutdown flatten {symbol}",
            _close_one(engine, command, symbol, CloseReason.EMERGENCY), symbol)
        lines += flattened if flattened is not None else _close_failed(engine, command, symbol)
    return lines


def _asleep_line(still_open: list[Position]) -> str:
    """The last line of a shutdown: what stays open and whether a stop-loss covers it."""
    if not still_open:
        return "asleep: no new entries; no open positions"
    count = f"{plural(len(still_open), 'position')} {'stays' if len(still_open) == 1 else 'stay'}"
    naked = [p.symbol for p in still_open
             if p.state.open and not p.stop.covers(p.quantity)]
    if not naked:
        return f"asleep: no new entries; {count} protected by exchange-side orders"
    return (f"asleep: no new entries; {count} open, {', '.join(naked)} with NO stop-loss on "
            "the exchange right now")


async def _cancel_entries(engine: Engine, symbol: str) -> list[str]:
    lines = []
    await engine.view.snapshot(symbol)
    for order in engine.tracker.ours_live(symbol):
        if order.role is OrderRole.ENTRY:
            final = await engine.executor.cancel_and_verify(symbol, order.client_id)
            outcome = f"the exchange says {final.status.value}" if final \
                else "the exchange no longer lists it"
            lines.append(f"{symbol}: entry order cancelled, {outcome} ({order.client_id})")
    return lines


async def wake(engine: Engine, command: Command) -> CommandResult:
    lines = await reconcile(engine)
    cooldown = timedelta(minutes=engine.settings.emergency_cooldown_minutes)
    engine.guard_state = guards.wake(engine.guard_state, engine.clock.now(), cooldown)
    after = f" after a {duration(cooldown)} cooldown" if cooldown else ""
    paused = _pauses_left(engine.guard_state)
    if not paused:
        lines.append(f"awake: trading resumes{after}")
        return CommandResult(True, lines)
    resume = "send /resume in Telegram" if command.source == "cli" else "send /resume"
    cooling = f" (and a {duration(cooldown)} cooldown)" if cooldown else ""
    lines += [f"awake: exits and protection run; new entries wait for your /pause{cooling}",
              *paused, f"{resume} to trade again"]
    return CommandResult(True, lines)


def _pauses_left(state: guards.GuardState) -> list[str]:
    """The pauses a /wake leaves on (it ends the sleep, not a /pause), one line each."""
    lines = []
    if state.paused:
        until = f"{state.paused_until:%H:%M} UTC" if state.paused_until else "/resume"
        lines.append(f"entries stay paused until {until}")
    lines += [f"{symbol}: entries stay paused until "
              f"{f'{until:%H:%M} UTC' if until else f'/resume {symbol}'}"
              for symbol, until in sorted(state.paused_symbols.items())]
    return lines


async def pause(engine: Engine, command: Command) -> CommandResult:
    """Pause entries (all symbols, or `command.symbol` only), until a time or /resume."""
    until = engine.clock.now() + command.duration if command.duration else None
    if command.symbol:
        engine.guard_state = guards.pause_symbol(engine.guard_state, command.symbol, until)
        what = f"{command.symbol}: entries paused"
    else:
        engine.guard_state = guards.pause(engine.guard_state, until)
        what = "entries paused"
    when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else \
        f"until /resume{' ' + command.symbol if command.symbol else ''}"
    return CommandResult(True, [f"{what} {when}; exits and protection keep running"])


async def resume(engine: Engine, command: Command) -> CommandResult:
    """Resume entries everywhere (every pause ends), or on `command.symbol` only."""
    state = engine.guard_state
    if command.symbol:
        engine.guard_state = guards.resume_symbol(state, command.symbol)
        line = f"{command.symbol}: entries resumed"
        if state.paused:
            line += "; all symbols stay paused until /resume"
        return CommandResult(True, [line])
    engine.guard_state = guards.resume(state)
    symbols = sorted(state.paused_symbols)
    return CommandResult(True, ["entries resumed" + (
        f" (also on {', '.join(symbols)})" if symbols else "")])


async def unlock(engine: Engine, command: Command) -> CommandResult:
    """/unlock SYMBOL: end its cooldown and clear its breakers (announced as cleared)."""
    symbol = command.symbol or ""
    before = engine.guard_state
    events = engine.guards.apply(guards.unlock, symbol)
    lines = [f"{symbol}: {event.text}" for event in events]
    if symbol in before.cooldowns and before.cooldowns[symbol] > engine.clock.now():
        lines.append(f"{symbol}: cooldown ended")
    if not lines:
        lines.append(f"{symbol}: no cooldown or breaker to clear")
    refusal = engine.entry_refusal(symbol)
    lines.append(f"{symbol}: entries still blocked: {refusal}" if refusal
                 else f"{symbol}: entries allowed")
    return CommandResult(True, lines)


async def enter_by_hand(engine: Engine, command: Command) -> CommandResult:
    """/long, /short SYMBOL: one entry planned and protected like a signal's."""
    symbol = command.symbol or ""
    side = Side.BUY if command.kind is CommandKind.LONG else Side.SELL
    # As fresh as the entry's view (Engine.enter_by_hand): a close found over REST (the
    # stream was down) brings no account event, so the balance last read may still count
    # the margin the closed position held, and refuse the entry for "insufficient margin".
    await read_balance(engine)
    outcome = await engine.enter_by_hand(symbol, side, f"manual /{command.kind.value} "
                                         f"({command.source})")
    if isinstance(outcome, str):
        return CommandResult(False, [f"{symbol}: no {side.label} entry: {outcome}"])
    position = engine.positions.get(symbol, outcome)   # after its legs were placed
    return CommandResult(position.state is not PositionState.CLOSED,
                         entry_lines(engine, position))


def entry_lines(engine: Engine, position: Position) -> list[str]:
    """What a manual entry did, as the exchange confirmed it."""
    symbol, label = position.symbol, position.side.label
    rules = symbol_rules(engine, symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    if position.state is PositionState.CLOSED:
        why = engine.entries.refused.get(symbol, "see /logs")
        return [f"{symbol}: the {label} entry was refused by the exchange ({why}); nothing is open"]
    size = quantity(position.quantity or position.initial_quantity, step)
    if position.state is PositionState.ENTERING:
        return [f"{symbol}: {label} {size} sent; its fill is not confirmed yet (the order "
                "is followed by its id: /status shows it within seconds)"]
    return [f"{symbol}: {label} {size} filled at {price(position.entry_price, tick)}; "
            f"risk {money(position.risk_amount())} USDT at the stop",
            *(_leg_line(position, leg, tick) for leg in position.legs)]


def _leg_line(position: Position, leg: Leg, tick: Decimal | None) -> str:
    """One leg and whether it is on the exchange (the two-TP plan's legs with their part)."""
    part = position.leg_quantity(leg.role)
    state = "on the exchange" if leg.covers(part) else "being placed (/status follows it)"
    name = {OrderRole.STOP_LOSS: "stop-loss", OrderRole.TAKE_PROFIT_1: f"TP1 for {part}"}.get(
        leg.role, "take-profit" if position.take_profit_1 is None else f"TP2 for {part}")
    return f"{name} {price(leg.trigger_price, tick)}: {state}"
