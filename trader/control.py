"""Operator commands: queries answered at once from the engine's view (trader/views.py),
actions queued and run between ticks by the single writer (close, shutdown, wake, pause,
resume), and a `tradebot shutdown|wake` relayed from a shell through the database.

    controller = Controller(engine)          # what the Telegram bot talks to
    result = await controller.execute(Command(CommandKind.CLOSE, "tg:1:42", now, symbol="BTCUSDT"))
    await controller.process()               # in the engine's loop, between ticks

Every action reports exactly what was done, one fact per line; nothing is claimed that the
exchange did not confirm. A command that fails answers what happened, never silence.
"""

import asyncio
from dataclasses import replace
from datetime import timedelta

from loguru import logger

from storage import SaveStateFailure
from trader import guards
from trader.alerts import Alert, AlertName
from trader.commands import ALL_SYMBOLS, Command, CommandKind, CommandResult
from trader.domain import CloseReason, OrderRole
from trader.engine import Engine
from trader.position import PositionState
from trader.startup import reconcile
from trader.views import answer_query

CLI_REQUEST_KEY = "cli:request"


class Controller:
    """The command side of the engine (implements `trader.commands.EngineControl`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[tuple[Command, asyncio.Future[CommandResult]]] = asyncio.Queue()
        self.results: dict[str, CommandResult] = {}

    @property
    def symbols(self) -> list[str]:
        return self.engine.symbols

    async def execute(self, command: Command) -> CommandResult:
        """Answer a query now; queue an action for the engine's loop and wait for it."""
        if not command.kind.mutating:
            return answer_query(self.engine, command)
        if command.command_id in self.results:
            return replace(self.results[command.command_id], duplicate=True)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        await self.queue.put((command, future))
        self.engine.wakeup.set()
        return await future

    async def process(self) -> int:
        """Run queued commands (and a CLI request), each inside its own boundary."""
        await self.engine.contained("cli request", self._take_cli_request())
        done = 0
        while not self.queue.empty():
            command, future = self.queue.get_nowait()
            if not future.done():
                future.set_result(await self.run(command))
            done += 1
        return done

    async def run(self, command: Command) -> CommandResult:
        if command.command_id in self.results:
            return replace(self.results[command.command_id], duplicate=True)
        engine = self.engine
        result = await engine.contained(f"command {command.kind.value}",
                                        run_command(engine, command), command.symbol or "")
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
        if not request or store.get(f"cli:answer:{request['id']}") is not None:
            return
        command = Command(CommandKind(request["kind"]), f"cli:{request['id']}",
                          self.engine.clock.now(), flatten=bool(request.get("flatten")),
                          source="cli")
        result = await self.run(command)
        try:
            with store.transaction("cli answer"):
                store.put(f"cli:answer:{request['id']}", {"ok": result.ok, "lines": result.lines},
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
    }[command.kind]
    return await handler(engine, command)


async def close_positions(engine: Engine, command: Command) -> CommandResult:
    """Close at market; each symbol inside its own boundary, every step reported."""
    symbols = engine.symbols if command.symbol in (None, ALL_SYMBOLS) else [command.symbol]
    lines: list[str] = []
    ok = True
    for symbol in symbols:
        done = await engine.contained(f"close {symbol}", _close_one(engine, command, symbol),
                                      symbol)
        if done is None:
            ok = False
            lines.append(f"{symbol}: close failed: {engine.last_error}; the position keeps its "
                         "exchange-side stop-loss and take-profit; send /close again")
        else:
            lines += done
    return CommandResult(ok, lines or ["no open positions"])


async def _close_one(engine: Engine, command: Command, symbol: str,
                     reason: CloseReason = CloseReason.COMMAND) -> list[str]:
    position = engine.positions.get(symbol)
    if position is None or not position.state.open:
        view = await engine.view.view(symbol, fresh=True)
        if view.position.side is None:
            return [f"{symbol}: no open position"] if command.symbol not in (None, ALL_SYMBOLS) \
                else []
        return [f"{symbol}: exchange position not tracked yet; the next tick adopts it"]
    return [*await engine.close(symbol, reason), _final_line(engine, symbol)]


def _final_line(engine: Engine, symbol: str) -> str:
    if symbol in engine.positions:
        return f"{symbol}: STILL OPEN - check /status"
    closed = engine.store.closed_positions()
    last = next((p for p in reversed(closed) if p.symbol == symbol), None)
    if last is None:
        return f"{symbol}: closed"
    return (f"{symbol}: closed at {last.exit_price}, PnL {last.realized_pnl - last.fees:+.2f} "
            "USDT; no orders left")


async def shutdown(engine: Engine, command: Command) -> CommandResult:
    """Reconcile, cancel entry orders, optionally flatten, then sleep (protection only).

    Sleep is entered whatever fails on the way; each step is contained and reported."""
    lines = await engine.contained("shutdown reconcile", reconcile(engine)) or []
    for symbol in engine.symbols:
        cancelled = await engine.contained(f"shutdown cancel entries {symbol}",
                                           _cancel_entries(engine, symbol), symbol)
        lines += cancelled if cancelled is not None else [
            f"{symbol}: could not cancel entry orders: {engine.last_error}"]
    if command.flatten:
        for symbol in engine.symbols:
            position = engine.positions.get(symbol)
            if position is None or not position.state.open:
                continue
            flattened = await engine.contained(
                f"shutdown flatten {symbol}",
                _close_one(engine, command, symbol, CloseReason.EMERGENCY), symbol)
            lines += flattened if flattened is not None else [
                f"{symbol}: could not flatten: {engine.last_error}; protection stays"]
    engine.guard_state = guards.sleep(engine.guard_state)
    still_open = [p for p in engine.positions.values() if p.state is not PositionState.CLOSED]
    lines.append("asleep: no new entries; " + (
        f"{len(still_open)} position(s) stay protected by exchange-side orders" if still_open
        else "no open positions"))
    engine.alerter.publish(Alert(AlertName.EMERGENCY_DONE, "\n".join(lines)), engine.clock.now())
    return CommandResult(True, lines)


async def _cancel_entries(engine: Engine, symbol: str) -> list[str]:
    lines = []
    await engine.view.snapshot(symbol)
    for order in engine.tracker.ours_live(symbol):
        if order.role is OrderRole.ENTRY:
            final = await engine.executor.cancel_and_verify(symbol, order.client_id)
            status = final.status.value if final else "gone"
            lines.append(f"{symbol}: entry order {order.client_id} cancel -> {status}")
    return lines


async def wake(engine: Engine, command: Command) -> CommandResult:
    lines = await reconcile(engine)
    cooldown = timedelta(minutes=engine.settings.emergency_cooldown_minutes)
    engine.guard_state = guards.wake(engine.guard_state, engine.clock.now(), cooldown)
    lines.append("awake: trading resumes" + (f" after a {cooldown} cooldown" if cooldown else ""))
    return CommandResult(True, lines)


async def pause(engine: Engine, command: Command) -> CommandResult:
    until = engine.clock.now() + command.duration if command.duration else None
    engine.guard_state = guards.pause(engine.guard_state, until)
    text = f"entries paused until {until:%Y-%m-%d %H:%M} UTC" if until else "entries paused until /resume"
    return CommandResult(True, [text + "; exits and protection keep running"])


async def resume(engine: Engine, command: Command) -> CommandResult:
    engine.guard_state = guards.resume(engine.guard_state)
    return CommandResult(True, ["entries resumed"])
