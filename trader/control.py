"""Operator commands executed by the engine: queries answered from its view, actions run
between ticks (close, shutdown, wake, pause, resume), and the CLI's shutdown/wake.

Every action reports exactly what was done, one fact per line; nothing is claimed that the
exchange did not confirm.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from trader import guards
from trader.alerts import Alert, AlertName
from trader.commands import (
    ALL_SYMBOLS,
    AlertView,
    Command,
    CommandKind,
    CommandResult,
    PnlView,
    PositionView,
    StatusView,
)
from trader.domain import ZERO, CloseReason, OrderRole, PositionState

if TYPE_CHECKING:
    from trader.config import Settings
    from trader.engine import Engine

PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "all": None}


# --- queries ----------------------------------------------------------------------
def answer_query(engine: "Engine", command: Command) -> CommandResult:
    kind = command.kind
    if kind is CommandKind.STATUS:
        return CommandResult(True, status=status_view(engine))
    if kind is CommandKind.POSITIONS:
        return CommandResult(True, positions=position_views(engine))
    if kind is CommandKind.PNL:
        return CommandResult(True, pnl=pnl_view(engine, command.period))
    if kind is CommandKind.ALERTS:
        return CommandResult(True, alerts=[
            AlertView(a.created_at, a.name, a.severity, a.symbol, a.text)
            for a in engine.store.recent_alerts(15)])
    if kind is CommandKind.CHART:
        from trader.chart import equity_chart_png
        from trader.metrics import EquityPoint
        curve = [EquityPoint(at, eq) for at, eq in engine.store.equity_curve()]
        return CommandResult(True, png=equity_chart_png(curve, title="Equity"))
    raise ValueError(f"not a query: {kind}")


def run_state(engine: "Engine") -> str:
    state = engine.guard_state
    if engine.stopping:
        return "stopping"
    if state.asleep:
        return "asleep"
    if state.paused:
        return "paused"
    return "running"


def position_views(engine: "Engine") -> list[PositionView]:
    views = []
    for position in engine.positions.values():
        snap = engine.snapshots.get(position.symbol)
        mark = snap.mark if snap else position.entry_price
        views.append(PositionView(
            symbol=position.symbol, side=position.side.label, quantity=position.quantity,
            entry_price=position.entry_price, mark_price=mark,
            unrealized_pnl=position.unrealized_pnl(mark), sl_price=position.sl_price,
            sl_attached=engine.sentinel.attached(position, OrderRole.STOP_LOSS),
            tp_price=position.tp_price,
            tp_attached=engine.sentinel.attached(position, OrderRole.TAKE_PROFIT),
            state=position.state.value,
            opened_at=position.opened_at, leverage=position.leverage))
    return views


def status_view(engine: "Engine") -> StatusView:
    now = engine.clock.now()
    state = engine.guard_state
    balance = engine.balance
    breakers = [f"{name} until {until:%H:%M} UTC" for name, until in sorted(state.breakers.items())
                if until > now]
    return StatusView(
        mode=engine.settings.mode, run_state=run_state(engine),
        equity=balance.equity if balance else ZERO,
        free_margin=balance.available if balance else ZERO,
        positions=position_views(engine),
        regimes={s: str(engine.counters.get(s, "regime_state") or "-") for s in engine.symbols},
        breakers=breakers,
        cooldowns={s: until for s, until in state.cooldowns.items() if until > now},
        last_error=engine.last_error, uptime=engine.uptime(now), paused_until=state.paused_until,
        save_failures=engine.store.health.in_a_row,
        counters=engine.counters.snapshot(), feed=engine.settings.effective_feed,
        api_circuit=_circuit_text(engine, now))


def _circuit_text(engine: "Engine", now: datetime) -> str | None:
    circuit = engine.exchange.circuit()
    if not circuit.is_open(now) or circuit.open_until is None:
        return None
    return f"{circuit.reason}; requests resume at {circuit.open_until:%H:%M:%S} UTC"


def pnl_view(engine: "Engine", period: str) -> PnlView:
    span = PERIODS.get(period, PERIODS["day"])
    since = engine.clock.now() - span if span else None
    closed = [p for p in engine.store.closed_positions(since) if p.close_reason is not CloseReason.UNKNOWN]
    realized = sum((p.realized_pnl for p in closed), ZERO)
    fees = sum((p.fees for p in closed), ZERO)
    funding = Decimal(str(engine.store.get("funding_total", "0")))
    wins = sum(1 for p in closed if p.realized_pnl - p.fees > 0)
    return PnlView(period, realized, fees, funding if period == "all" else ZERO, len(closed), wins)


# --- actions ----------------------------------------------------------------------
async def run_command(engine: "Engine", command: Command) -> CommandResult:
    logger.info("command kind={} id={} source={}", command.kind, command.command_id, command.source)
    handler = {
        CommandKind.CLOSE: close_positions,
        CommandKind.SHUTDOWN: shutdown,
        CommandKind.WAKE: wake,
        CommandKind.PAUSE: pause,
        CommandKind.RESUME: resume,
    }[command.kind]
    return await handler(engine, command)


async def close_positions(engine: "Engine", command: Command) -> CommandResult:
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


async def _close_one(engine: "Engine", command: Command, symbol: str) -> list[str]:
    position = engine.positions.get(symbol)
    if position is None or not position.state.open:
        snap = await engine.observe(symbol)
        if snap.position.side is None:
            return [f"{symbol}: no open position"] if command.symbol not in (None, ALL_SYMBOLS) \
                else []
        return [f"{symbol}: exchange position not tracked yet; reconcile adopts it first"]
    lines = await engine.trading.flatten(position, CloseReason.COMMAND)
    return [*lines, _final_line(engine, symbol)]


def _final_line(engine: "Engine", symbol: str) -> str:
    if symbol in engine.positions:
        return f"{symbol}: STILL OPEN - check /status"
    closed = engine.store.closed_positions()
    last = next((p for p in reversed(closed) if p.symbol == symbol), None)
    if last is None:
        return f"{symbol}: closed"
    return (f"{symbol}: closed at {last.exit_price}, PnL {last.realized_pnl - last.fees:+.2f} USDT; "
            "no orders left")


async def shutdown(engine: "Engine", command: Command) -> CommandResult:
    """Reconcile, cancel entry orders, optionally flatten, then sleep (protection only).

    Sleep is entered whatever fails on the way; each step is contained and reported."""
    from trader.reconcile import reconcile_now
    lines = await engine.contained("shutdown reconcile", reconcile_now(engine)) or []
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
            flattened = await engine.contained(f"shutdown flatten {symbol}", engine.trading.flatten(
                position, CloseReason.EMERGENCY), symbol)
            lines += flattened if flattened is not None else [
                f"{symbol}: could not flatten: {engine.last_error}; protection stays"]
            lines.append(_final_line(engine, symbol))
    engine.save_guards(guards.sleep(engine.guard_state))
    still_open = [p for p in engine.positions.values() if p.state is not PositionState.CLOSED]
    lines.append("asleep: no new entries; " + (
        f"{len(still_open)} position(s) stay protected by exchange-side orders" if still_open
        else "no open positions"))
    engine.alerter.publish(Alert(AlertName.EMERGENCY_DONE, "\n".join(lines)), engine.clock.now())
    return CommandResult(True, lines)


async def _cancel_entries(engine: "Engine", symbol: str) -> list[str]:
    lines = []
    snap = await engine.observe(symbol)
    for order in engine.our_orders(snap):
        if order.role is OrderRole.ENTRY:
            final = await engine.executor.cancel_and_verify(symbol, order.client_id)
            status = final.status.value if final else "gone"
            lines.append(f"{symbol}: entry order {order.client_id} cancel -> {status}")
    return lines


async def wake(engine: "Engine", command: Command) -> CommandResult:
    from trader.reconcile import reconcile_now
    lines = await reconcile_now(engine)
    cooldown = timedelta(minutes=engine.settings.emergency_cooldown_minutes)
    engine.save_guards(guards.wake(engine.guard_state, engine.clock.now(), cooldown))
    lines.append("awake: trading resumes" + (f" after a {cooldown} cooldown" if cooldown else ""))
    return CommandResult(True, lines)


async def pause(engine: "Engine", command: Command) -> CommandResult:
    until = engine.clock.now() + command.duration if command.duration else None
    engine.save_guards(guards.pause(engine.guard_state, until))
    text = f"entries paused until {until:%Y-%m-%d %H:%M} UTC" if until else "entries paused until /resume"
    return CommandResult(True, [text + "; exits and protection keep running"])


async def resume(engine: "Engine", command: Command) -> CommandResult:
    engine.save_guards(guards.resume(engine.guard_state))
    return CommandResult(True, ["entries resumed"])


# --- CLI ----------------------------------------------------------------------------
CLI_REQUEST_KEY = "cli:request"
CLI_ANSWER_TIMEOUT = 30.0


async def take_cli_request(engine: "Engine") -> None:
    """A `tradebot shutdown|wake` from a shell on the same disk: run it as our own command."""
    request = engine.store.get(CLI_REQUEST_KEY)
    if not request or engine.store.get(f"cli:answer:{request['id']}") is not None:
        return
    kind = CommandKind(request["kind"])
    result = await run_command(engine, Command(kind, f"cli:{request['id']}", engine.clock.now(),
                                               flatten=bool(request.get("flatten")), source="cli"))
    engine.persist(lambda: engine.store.put(f"cli:answer:{request['id']}",
                                            {"ok": result.ok, "lines": result.lines},
                                            engine.clock.now()), "cli answer")
    engine.persist(lambda: engine.store.delete(CLI_REQUEST_KEY), "cli request")


async def run_control_cli(settings: "Settings", action: str, *, flatten: bool = False) -> int:
    """`tradebot shutdown|wake`. A running agent on this database executes it (single
    writer); when none answers within 30 s, the command runs here, against the exchange."""
    import asyncio
    import uuid

    from storage import Store
    from trader.clock import SystemClock
    request_id = str(uuid.uuid4())
    clock = SystemClock()
    store = Store.open(settings.db_path)
    try:
        store.put(CLI_REQUEST_KEY, {"id": request_id, "kind": action, "flatten": flatten}, clock.now())
        print(f"{action}: asking the running agent (up to {CLI_ANSWER_TIMEOUT:.0f} s)...")
        for _ in range(int(CLI_ANSWER_TIMEOUT / 0.5)):
            answer = store.get(f"cli:answer:{request_id}")
            if answer is not None:
                print("\n".join(answer["lines"]))
                return 0 if answer["ok"] else 1
            await asyncio.sleep(0.5)
        store.delete(CLI_REQUEST_KEY)
    finally:
        store.close()
    print("no running agent answered; acting directly on the exchange")
    return await _run_here(settings, action, flatten)


async def _run_here(settings: "Settings", action: str, flatten: bool) -> int:
    import uuid

    from trader.app import build_engine
    from trader.reconcile import boot
    engine, close = await build_engine(settings)
    try:
        await boot(engine)
        kind = CommandKind.SHUTDOWN if action == "shutdown" else CommandKind.WAKE
        result = await run_command(engine, Command(kind, f"cli:{uuid.uuid4()}", engine.clock.now(),
                                                   flatten=flatten, source="cli"))
        print("\n".join(result.lines))
        return 0 if result.ok else 1
    finally:
        await close()
