"""Read-only answers for the operator: /status, /positions, /pnl, /alerts, /chart, built
from the engine's current view without waiting for a tick."""

from datetime import datetime, timedelta
from decimal import Decimal

from trader.commands import (
    AlertView,
    Command,
    CommandKind,
    CommandResult,
    PnlView,
    PositionView,
    StatusView,
)
from trader.domain import ZERO, CloseReason
from trader.engine import Engine

PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "all": None}


def answer_query(engine: Engine, command: Command) -> CommandResult:
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


def run_state(engine: Engine) -> str:
    state = engine.guard_state
    if engine.stopping:
        return "stopping"
    if state.asleep:
        return "asleep"
    if state.paused:
        return "paused"
    return "running"


def position_views(engine: Engine) -> list[PositionView]:
    views = []
    for position in engine.positions.values():
        held = engine.tracker.position(position.symbol)
        mark = held.mark_price if held is not None and held.mark_price else position.entry_price
        views.append(PositionView(
            symbol=position.symbol, side=position.side.label, quantity=position.quantity,
            entry_price=position.entry_price, mark_price=mark,
            unrealized_pnl=position.unrealized_pnl(mark),
            stop_trigger=position.stop.trigger_price,
            stop_attached=position.stop.covers(position.quantity),
            take_profit_trigger=position.take_profit.trigger_price,
            take_profit_attached=position.take_profit.covers(position.quantity),
            state=position.state.value, opened_at=position.opened_at,
            leverage=position.leverage))
    return views


def status_view(engine: Engine) -> StatusView:
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


def _circuit_text(engine: Engine, now: datetime) -> str | None:
    circuit = engine.exchange.circuit()
    if not circuit.is_open(now) or circuit.open_until is None:
        return None
    return f"{circuit.reason}; requests resume at {circuit.open_until:%H:%M:%S} UTC"


def pnl_view(engine: Engine, period: str) -> PnlView:
    span = PERIODS.get(period, PERIODS["day"])
    since = engine.clock.now() - span if span else None
    closed = [p for p in engine.store.closed_positions(since)
              if p.close_reason is not CloseReason.UNKNOWN]
    realized = sum((p.realized_pnl for p in closed), ZERO)
    fees = sum((p.fees for p in closed), ZERO)
    funding = Decimal(str(engine.store.get("funding_total", "0")))
    wins = sum(1 for p in closed if p.realized_pnl - p.fees > 0)
    return PnlView(period, realized, fees, funding if period == "all" else ZERO, len(closed), wins)
