"""Operator commands: queries answered at once from the engine's view (trader/views.py),
actions queued and run between ticks by the single writer (close, shutdown, wake, pause,
resume, long, short, unlock), and a `tradebot shutdown|wake` relayed from a shell through
the database.

    controller = Controller(engine)          # what the Telegram bot talks to
    result = await controller.execute(Command(CommandKind.CLOSE, "tg:1:42", now, symbol="BTCUSDT"))
    await controller.process()               # in the engine's loop, between ticks

The actions live by job: trader/control_close.py (/close), control_sleep.py (/shutdown,
/wake), control_entries.py (/pause, /resume, /unlock, /long, /short), control_stop.py (/sl). Every action
reports exactly what was done, one fact per line; nothing is claimed that the
exchange did not confirm. A command that fails answers what happened, never silence.
"""

import asyncio
import importlib
import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from loguru import logger

from storage import SaveStateFailure
from trader.cli_mailbox import CLI_REQUEST_KEY, answer_key
from trader.commands import Command, CommandKind, CommandResult, StopCheck
from trader.control_close import close_positions
from trader.control_entries import (
    enter_by_hand,
    entry_refused,
    nothing_locked,
    pause,
    refused_entry_line,
    resume,
    unlock,
)
from trader.control_sleep import already_asleep, shutdown, wake
from trader.control_stop import check_stop, move_stop
from trader.display import duration
from trader.domain import Side
from trader.engine import Engine
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.exchange_trouble import advice, problem
from trader.views import answer_query, closable, run_state

# A queued command that waited longer than the bot waits for its result (bot/handlers.py:
# then "Still running") is not run if it adds risk: the operator was told nothing happened
# yet, and the market moved meanwhile. Closing and sleeping, late, are still what was asked.
QUEUE_WAIT_LIMIT = 60.0       # seconds
ADDS_RISK = frozenset({CommandKind.LONG, CommandKind.SHORT, CommandKind.WAKE,
                       CommandKind.RESUME, CommandKind.UNLOCK, CommandKind.SL})

Queued = tuple[Command, "asyncio.Future[CommandResult]", float]   # float: monotonic enqueue time


class Controller:
    """The command side of the engine (implements `trader.commands.EngineControl`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: asyncio.Queue[Queued] = asyncio.Queue()
        self.results: dict[str, CommandResult] = {}
        self.queue_wait_limit = QUEUE_WAIT_LIMIT
        # The action under way; still set when a stop cancelled it before its answer (the
        # SHUTDOWN alert then names it: the operator's "Working on it…" never got one).
        self.running: Command | None = None

    @property
    def symbols(self) -> list[str]:
        return self.engine.symbols

    def closable(self, symbol: str) -> list[str]:
        """What a /close of `symbol` (or ALL_SYMBOLS) could act on (trader/views.py)."""
        return closable(self.engine, symbol)

    def check_stop(self, symbol: str, price: Decimal | None) -> StopCheck:
        """/sl judged before its confirmation (trader/control_stop.py)."""
        return check_stop(self.engine, symbol, price)

    def already_decided(self, kind: CommandKind, symbol: str | None) -> list[str]:
        """The answer, at once, of a command whose outcome is already decided; [] when its
        confirmation is worth asking (`trader.commands.EngineControl`)."""
        return already_decided(self.engine, kind, symbol or "")

    async def execute(self, command: Command) -> CommandResult:
        """Answer a query now; queue an action for the engine's loop and wait for it."""
        if command.kind is CommandKind.CHART:   # drawn off the loop: ticks go on meanwhile
            # matplotlib (~0.5 s of imports) once a chart is asked for, not at every start;
            # imported off the loop too (the first /chart would otherwise hold the ticks)
            chart_view = await asyncio.to_thread(importlib.import_module, "trader.chart_view")
            return await chart_view.answer_chart(self.engine, command.symbol)
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
        self.running = command
        result = await engine.contained(f"command {command.kind.value}",
                                        self._answered(command), command.symbol or "")
        self.running = None          # not reached when cancelled: see `running`
        if result is None:
            result = CommandResult(False, [
                f"{command.kind.value} failed: {engine.last_error}",
                "open positions keep their exchange-side stop-loss and take-profit; "
                "/status shows what is open; send the command again to retry"])
        self.results[command.command_id] = result
        return result

    async def _answered(self, command: Command) -> CommandResult:
        """The command as one unit of work, like a tick: committed before each order request
        and each wait (storage/unit_of_work.py). The exchange's trouble (a rate limit's open
        circuit, a refusal, no answer) is the answer, in words: what happened and what to do
        (trader/exchange_trouble.py), counted by the boundary as any exchange failure."""
        engine = self.engine
        try:
            return await engine.store.unit_of_work(run_command(engine, command))
        except (ExchangeError, UnknownOutcome) as error:
            engine.boundary.failed(f"command {command.kind.value}", error, command.symbol or "")
            name = command.kind.value
            return CommandResult(False, [
                f"/{name} not done: {problem(error)}",
                f"{advice(error)}, then send /{name} again; open positions keep their "
                "exchange-side stop-loss and take-profit (/status shows what is open)"])

    async def _take_cli_request(self) -> None:
        """A `tradebot shutdown|wake` from a shell on the same disk: run it as our own."""
        store = self.engine.store
        try:
            request = store.get(CLI_REQUEST_KEY)
            if not request or store.get(answer_key(request["id"])) is not None:
                return
        except sqlite3.Error as exc:
            # Another process holds the file (trader/presence.py logs the streak): the
            # request waits for the next pass; not an unexpected error to alert.
            logger.debug("cli request not read error={!r}", exc)
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


def already_decided(engine: Engine, kind: CommandKind, symbol: str) -> list[str]:
    """Checked from what the agent knows now, nothing sent: while it is starting it knows
    nothing yet (the command then waits for the boot, or is refused for waiting too long)."""
    if run_state(engine) == "starting":
        return []
    if kind in (CommandKind.LONG, CommandKind.SHORT):
        refusal = entry_refused(engine, symbol)
        side = Side.BUY if kind is CommandKind.LONG else Side.SELL
        return [refused_entry_line(symbol, side, refusal)] if refusal else []
    if kind is CommandKind.UNLOCK:
        return nothing_locked(engine, symbol)
    if kind is CommandKind.SHUTDOWN:
        return already_asleep(engine)
    return []       # /sl: check_stop (its level decides)


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
        CommandKind.SL: move_stop,
    }[command.kind]
    return await handler(engine, command)
