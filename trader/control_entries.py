"""Commands about entries: /pause and /resume (all symbols or one), /unlock SYMBOL, and
the manual entries /long and /short, planned and protected like a signal's."""

from decimal import Decimal

from trader import guards
from trader.commands import Command, CommandKind, CommandResult
from trader.display import money, price, quantity
from trader.domain import OrderRole, Side
from trader.engine import Engine
from trader.position import Leg, Position, PositionState
from trader.startup import read_balance
from trader.views import symbol_rules


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
    lines = ["entries resumed" + (f" (also on {', '.join(symbols)})" if symbols else "")]
    blocked = state.entries_blocked_until        # /wake's cooldown: /resume does not end it
    if blocked is not None and blocked > engine.clock.now():
        lines.append(f"new entries after the emergency cooldown, at {blocked:%H:%M} UTC")
    return CommandResult(True, lines)


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
