"""Read-only answers for the operator (/status, /positions, /balance, /pnl, /daily, /weekly,
/monthly, /performance, /trades, /alerts, /logs, /version, /config), built from the engine's
current view and the journal without waiting for a tick (/chart: trader/chart_view.py).

Prices are rounded to the symbol's tick and quantities to its step here, once, so every
reply shows what the exchange would; money stays exact until the formatter shows cents.
"""

import os
import platform
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from trader import guards
from trader.account_positions import Unmanaged, unmanaged
from trader.commands import (
    ALL_SYMBOLS,
    PERIOD_KINDS,
    AlertView,
    BalanceView,
    Command,
    CommandKind,
    CommandResult,
    PnlView,
    PositionView,
    StatusView,
)
from trader.display import on_step
from trader.domain import ZERO, ExchangePosition, OrderRole
from trader.engine import Engine
from trader.exchange.rest_answers import last_outage
from trader.log_ring import RECENT
from trader.position import Leg, LegStatus, Position, PositionState
from trader.symbol_rules import SymbolRules
from trader.trade_history import (
    LOOKBACK,
    performance,
    period_pnl,
    period_start,
    period_table,
    previous_start,
    recent_trades,
)
from trader.trade_store import FundingPayment

PNL_PERIODS = ("day", "week", "month", "all")
DEFAULT_COUNTS = {CommandKind.DAILY: 7, CommandKind.WEEKLY: 8, CommandKind.MONTHLY: 6,
                  CommandKind.TRADES: 10, CommandKind.LOGS: 10}


def answer_query(engine: Engine, command: Command) -> CommandResult:
    """The answer to a read-only command; ValueError for a command that is not one."""
    answer = QUERIES.get(command.kind)
    if answer is None:
        raise ValueError(f"not a query: {command.kind}")
    return answer(engine, command)


# --- state ------------------------------------------------------------------------------
def closable(engine: Engine, symbol: str) -> list[str]:
    """The symbols among `symbol` (or every one for ALL_SYMBOLS) with something a /close
    could act on: a position of the agent's in any state but CLOSED (an entry waiting for
    its answer too), or a position the exchange showed at its last look that the agent does
    not track (opened by hand). A traded symbol never looked at counts: unknown is not
    flat. A symbol the agent does not trade counts when the exchange last showed a position
    on it (trader/account_positions.py)."""
    others = [held.position.symbol for held in unmanaged(engine)
              if held.position.symbol not in engine.symbols]
    if symbol == ALL_SYMBOLS:
        return [s for s in engine.symbols if _maybe_open(engine, s)] + others
    if symbol not in engine.symbols:
        return [symbol] if symbol in others or _maybe_open_elsewhere(engine, symbol) else []
    return [symbol] if _maybe_open(engine, symbol) else []


def _maybe_open_elsewhere(engine: Engine, symbol: str) -> bool:
    """A symbol not traded whose position the agent took over for a /close, not CLOSED
    yet (a close that failed)."""
    position = engine.positions.get(symbol)
    return position is not None and position.state is not PositionState.CLOSED


def _maybe_open(engine: Engine, symbol: str) -> bool:
    position = engine.positions.get(symbol)
    if position is not None and position.state is not PositionState.CLOSED:
        return True
    seen = engine.tracker.position(symbol)
    return seen is None or seen.side is not None


def run_state(engine: Engine) -> str:
    state = engine.guard_state
    if engine.stopping:
        return "stopping"
    if not engine.booted and engine.ticks == 0:
        return "starting"       # Telegram answers before the exchange start-up succeeded
    if state.asleep:
        return "asleep"
    if state.paused:
        return "paused"
    return "running"


def symbol_rules(engine: Engine, symbol: str) -> SymbolRules | None:
    """The symbol's tick and step; None for a symbol the exchange no longer describes."""
    try:
        return engine.exchange.rules(symbol)
    except KeyError:
        return None


def position_views(engine: Engine) -> list[PositionView]:
    """The agent's positions, then the account's others as the exchange last showed them."""
    now = engine.clock.now()
    return [*(position_view(engine, position, now) for position in engine.positions.values()),
            *(unmanaged_view(engine, held, now) for held in unmanaged(engine))]


def unmanaged_view(engine: Engine, held: Unmanaged, now: datetime) -> PositionView:
    """A position the agent does not manage: its mark is the exchange's at that word (entry
    + its unrealised PnL per unit), or the one streamed since."""
    position, rules = held.position, symbol_rules(engine, held.position.symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    mark = engine.view.last_mark(position.symbol) if position.symbol in engine.symbols \
        else ZERO
    if not mark:
        mark = position.entry_price + position.unrealized_pnl / position.quantity
        if tick is None:      # the symbol's tick not known: at the entry price's digits
            mark = mark.quantize(position.entry_price)
    side = position.side
    pnl = (mark - position.entry_price) * position.quantity if mark else ZERO
    stop = held.stop.trigger_price if held.stop is not None else None
    return PositionView(
        symbol=position.symbol, side=side.label if side is not None else "FLAT",
        quantity=on_step(position.size, step), entry_price=on_step(position.entry_price, tick),
        mark_price=on_step(mark, tick), unrealized_pnl=pnl,
        stop_trigger=on_step(stop, tick) if stop is not None else None,
        stop_attached=held.stop is not None, take_profit_trigger=None,
        take_profit_attached=False, state="not managed by the agent",
        opened_at=position.updated_at or held.seen_at, leverage=position.leverage,
        managed=False, seen_ago=max(now - held.seen_at, timedelta(0)))


def last_mark(engine: Engine, symbol: str) -> Decimal:
    """The mark to show now: trader/exchange_view.py `ExchangeView.last_mark`."""
    return engine.view.last_mark(symbol)


def position_view(engine: Engine, position: Position, now: datetime) -> PositionView:
    held = engine.tracker.position(position.symbol)
    mark = last_mark(engine, position.symbol) or position.entry_price
    rules = symbol_rules(engine, position.symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    stop, target = position.stop.trigger_price, position.take_profit.trigger_price
    live = position.stop.order
    moving_to = None
    if live is not None and live.status is LegStatus.LIVE and live.trigger_price != stop:
        stop, moving_to = live.trigger_price, stop      # the live stop protects until then
    first = position.take_profit_1
    leverage = leverage_of(position, held)
    return PositionView(
        symbol=position.symbol, side=position.side.label,
        quantity=on_step(position.quantity, step), entry_price=on_step(position.entry_price, tick),
        mark_price=on_step(mark, tick), unrealized_pnl=position.unrealized_pnl(mark),
        stop_trigger=on_step(stop, tick) if stop is not None else None,
        stop_attached=_working(position.stop, position.quantity),
        take_profit_trigger=on_step(target, tick) if target is not None else None,
        take_profit_attached=_working(position.take_profit,
                                      position.leg_quantity(OrderRole.TAKE_PROFIT)),
        first_target_trigger=on_step(first.trigger_price, tick) if first is not None else None,
        first_target_attached=first is not None and _working(
            first, position.leg_quantity(OrderRole.TAKE_PROFIT_1)),
        state=position.state.value, opened_at=position.opened_at,
        leverage=leverage, age=now - position.opened_at,
        stop_moving_to=on_step(moving_to, tick) if moving_to is not None else None,
        stop_past_liquidation=past_liquidation(position, stop, leverage),
        stop_unanswered=_unanswered(position.stop, position.quantity),
        size_heard=engine.view.size_unread(position.symbol))


def _unanswered(stop: Leg, quantity: Decimal) -> int:
    """The stop placements out unanswered while none protects (0 once one does: the others
    are then extras, retired as they show up)."""
    if _working(stop, quantity):
        return 0
    return len(stop.superseded) + (stop.pending is not None)


def _working(leg: Leg, quantity: Decimal) -> bool:
    """Shown attached: a live order covering `quantity`, unless Binance triggered it and
    it did not execute (trader/stuck_trigger.py): that one covers nothing any more."""
    return leg.covers(quantity) and not (leg.order is not None and leg.order.stuck)


def liquidated_before(position: Position, leverage: int) -> Decimal:
    """The price the position is liquidated before reaching: 1/leverage from the entry.
    The agent trades ISOLATED margin (trader/exchange/binance_account.py): the position's
    margin is its notional / leverage, and it is liquidated once the loss leaves less than
    the maintenance margin, so sooner still (the exchange's own figure, `liquidationPrice`
    of GET /fapi/v3/positionRisk, is not read). Only margin added by hand moves it further:
    a stop past it is warned of, never refused."""
    return position.entry_price * (1 - position.side.sign / Decimal(leverage))


def past_liquidation(position: Position, level: Decimal, leverage: int) -> bool:
    """A stop at `level` lies past `liquidated_before`: it cannot trigger first."""
    return (liquidated_before(position, leverage) - level) * position.side.sign > 0


def leverage_of(position: Position, held: ExchangePosition | None) -> int:
    """The leverage the position has on the exchange (a change by hand applies to an open
    position: ACCOUNT_CONFIG_UPDATE, or read again after a stream outage), else the one it
    was opened with."""
    if held is not None and held.side is position.side and held.leverage > 0:
        return held.leverage
    return position.leverage


def status_view(engine: Engine) -> StatusView:
    now = engine.clock.now()
    state = engine.guard_state
    balance = engine.balance
    return StatusView(
        mode=engine.settings.mode, run_state=run_state(engine),
        equity=balance.equity if balance else ZERO,
        free_margin=balance.available if balance else ZERO,
        positions=position_views(engine),
        regimes={s: str(engine.counters.get(s, "regime_state") or "-") for s in engine.symbols},
        breakers=guards.describe(state, now),
        cooldowns={s: until for s, until in state.cooldowns.items()
                   if until > now and s in engine.symbols},     # not a closed hand position's
        last_error=engine.last_error, uptime=engine.uptime(now), paused_until=state.paused_until,
        save_failures=engine.store.health.in_a_row,
        counters=engine.counters.snapshot(), feed=engine.settings.effective_feed,
        api_circuit=_circuit_text(engine, now),
        paused_symbols={s: until for s, until in state.paused_symbols.items()
                        if until is None or until > now},
        exchange_failures=state.api_failures, equity_read_at=engine.balance_at, now=now,
        equity_before_close=engine.balance_keeper.read_before_close,
        entry_blocks=[*engine.margin.blocks(),
                      *(block for symbol in engine.symbols
                        if (block := engine.keeper.orphans.leftover_refusal(symbol)))],
        last_error_at=engine.boundary.last_error_at, exchange_outage=_outage_text(engine))


def _outage_text(engine: Engine) -> str | None:
    outage = last_outage(engine.exchange)
    if outage is None or outage.ended_at is not None:
        return None
    return f"{outage.describe()}; last: {outage.last_error}"


def _circuit_text(engine: Engine, now: datetime) -> str | None:
    circuit = engine.exchange.circuit()
    if not circuit.is_open(now) or circuit.open_until is None:
        return None
    return f"{circuit.reason}; requests resume at {circuit.open_until:%H:%M:%S} UTC"


def balance_result(engine: Engine, command: Command) -> CommandResult:
    view = balance_view(engine)
    if view is None:
        return CommandResult(True, ["the balance was not read from the exchange yet; "
                                    "try again in a minute"])
    return CommandResult(True, balance=view)


def balance_view(engine: Engine) -> BalanceView | None:
    """Wallet, equity and margin as last read (at most a minute old), and today's realised."""
    balance = engine.balance
    if balance is None:
        return None
    now = engine.clock.now()
    today = period_start("day", now)
    closed, funding = _history(engine, today)
    return BalanceView(
        wallet=balance.wallet, unrealized_pnl=balance.unrealized_pnl, equity=balance.equity,
        free_margin=balance.available, read_at=engine.balance_at,
        today=period_pnl("today", closed, funding, today),
        open_positions=sum(1 for p in engine.positions.values() if p.state.open)
        + len(unmanaged(engine)))


# --- history ------------------------------------------------------------------------------
def _history(engine: Engine,
             since: datetime | None) -> tuple[list[Position], list[FundingPayment]]:
    """Closed positions since `since`, and the funding from the earliest one's opening (a
    trade's own funding was paid while it was open, maybe before `since`)."""
    closed = engine.store.closed_positions(since)
    earliest = min((p.opened_at for p in closed), default=since)
    funding_since = min(earliest, since) if since is not None and earliest is not None else None
    return closed, engine.store.funding_payments(funding_since)


def pnl_view(engine: Engine, period: str) -> PnlView:
    """Realised PnL (net of fees and funding) of the last 24 h / 7 d / 30 d, or of all time."""
    if period not in PNL_PERIODS:
        raise ValueError(f"period must be one of {PNL_PERIODS}, not {period!r}")
    since = engine.clock.now() - LOOKBACK[period] if period != "all" else None
    closed, funding = _history(engine, since)
    return period_pnl(period, closed, funding, since)


def period_table_result(engine: Engine, command: Command) -> CommandResult:
    unit = PERIOD_KINDS[command.kind]
    count = command.count or DEFAULT_COUNTS[command.kind]
    now = engine.clock.now()
    oldest = period_start(unit, now)
    for _ in range(count - 1):
        oldest = previous_start(unit, oldest)
    closed, funding = _history(engine, oldest)
    wallet = engine.balance.wallet if engine.balance else None
    return CommandResult(True, table=period_table(unit, count, closed, funding, now, wallet))


def performance_result(engine: Engine, command: Command) -> CommandResult:
    closed, funding = _history(engine, None)
    return CommandResult(True, performance=performance(closed, funding))


def trades_result(engine: Engine, command: Command) -> CommandResult:
    count = command.count or DEFAULT_COUNTS[CommandKind.TRADES]
    closed, funding = _history(engine, None)
    return CommandResult(True, trades=recent_trades(
        closed, funding, count, lambda symbol: symbol_rules(engine, symbol)))


# --- the agent itself ---------------------------------------------------------------------
def logs_result(engine: Engine, command: Command) -> CommandResult:
    return CommandResult(True, logs=RECENT.last(command.count or DEFAULT_COUNTS[CommandKind.LOGS]))


def version_lines(engine: Engine) -> list[str]:
    """What runs: the agent, its runtime and main libraries, the strategy, the build."""
    lines = [f"tradebot {_version('tradebot')}",
             f"Python {platform.python_version()} · python-telegram-bot "
             f"{_version('python-telegram-bot')} · python-binance {_version('python-binance')}",
             f"strategy {engine.entries.strategy.name} · {engine.settings.mode}"]
    # Heroku's dyno metadata (labs feature) names the deployed commit.
    commit = os.environ.get("HEROKU_SLUG_COMMIT") or os.environ.get("SOURCE_VERSION")
    if commit:
        lines.append(f"build {commit[:12]}")
    return lines


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def config_view(engine: Engine) -> dict[str, str]:
    """The effective settings, secrets masked; a URL shows only its scheme and host (a
    heartbeat or webhook path is as good as a password)."""
    return {name: _url_host(value) for name, value in engine.settings.masked().items()}


def _url_host(value: str) -> str:
    if "://" not in value:
        return value
    parts = urlsplit(value)
    hidden = parts.path.strip("/") or parts.query or "@" in parts.netloc
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" + ("/…" if hidden else "")


QUERIES: dict[CommandKind, Callable[[Engine, Command], CommandResult]] = {
    CommandKind.STATUS: lambda engine, _: CommandResult(True, status=status_view(engine)),
    CommandKind.POSITIONS: lambda engine, _: CommandResult(True, positions=position_views(engine)),
    CommandKind.BALANCE: balance_result,
    CommandKind.PNL: lambda engine, command: CommandResult(
        True, pnl=pnl_view(engine, command.period)),
    CommandKind.DAILY: period_table_result,
    CommandKind.WEEKLY: period_table_result,
    CommandKind.MONTHLY: period_table_result,
    CommandKind.PERFORMANCE: performance_result,
    CommandKind.TRADES: trades_result,
    CommandKind.ALERTS: lambda engine, _: CommandResult(True, alerts=[
        AlertView(a.created_at, a.name, a.severity, a.symbol, a.text)
        for a in engine.store.recent_alerts(15)]),
    CommandKind.LOGS: logs_result,
    CommandKind.VERSION: lambda engine, _: CommandResult(True, version_lines(engine)),
    CommandKind.CONFIG: lambda engine, _: CommandResult(True, settings=config_view(engine)),
    # CHART is not here: the Controller draws it off the loop (trader/chart_view.py).
}
