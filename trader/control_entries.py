"""Commands about entries: /pause and /resume (all symbols or one), /unlock SYMBOL, and
the manual entries /long and /short, planned and protected like a signal's."""

from decimal import Decimal

from trader import breaker_rules, operator_holds, protection
from trader.close_record import exit_text
from trader.commands import Command, CommandKind, CommandResult
from trader.control_quotes import stop_quotes
from trader.display import money, number, plural, price, quantity
from trader.domain import CloseReason, OrderRole, Side
from trader.engine import Engine
from trader.executor import PROBE_GRACE
from trader.guard_state import GuardState, breaker_symbol
from trader.position import Leg, Position, PositionState
from trader.startup import read_balance
from trader.strategy.regime import DEFAULT_THRESHOLDS
from trader.symbol_rules import SymbolRules
from trader.views import symbol_rules


async def pause(engine: Engine, command: Command) -> CommandResult:
    """Pause entries (all symbols, or `command.symbol` only), until a time or /resume."""
    until = engine.clock.now() + command.duration if command.duration else None
    state = engine.guard_state
    if command.symbol:
        already = command.symbol in state.paused_symbols \
            and state.paused_symbols[command.symbol] == until
        engine.guard_state = operator_holds.pause_symbol(state, command.symbol, until)
        subject = f"{command.symbol}: entries"
    else:
        already = state.paused and state.paused_until == until
        engine.guard_state = operator_holds.pause(state, until)
        subject = "entries"
    when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else \
        f"until /resume{' ' + command.symbol if command.symbol else ''}"
    paused = "already paused" if already else "paused"
    lines = await _hold_working_entries(engine, command)
    return CommandResult(True, [*lines,
                                f"{subject} {paused} {when}; exits and protection keep running"])


async def _hold_working_entries(engine: Engine, command: Command) -> list[str]:
    """The pause is kept (saved and pinned) before this: a maker entry still quoting on a
    paused symbol gives up now (trader/control_quotes.py), what it filled kept and
    protected; a line for each. A symbol whose step fails gives up at its next tick."""
    lines: list[str] = []
    for symbol in [command.symbol] if command.symbol else engine.symbols:
        stopped = await engine.contained(f"pause stop quotes {symbol}",
                                         stop_quotes(engine, command, symbol), symbol)
        lines += stopped if stopped is not None else [
            f"{symbol}: could not stop its maker entry's quote now ({engine.last_error}); "
            "the agent gives it up at its next tick"]
    return lines


async def resume(engine: Engine, command: Command) -> CommandResult:
    """Resume entries everywhere (every pause ends), or on `command.symbol` only; says what
    still holds them (the sleep, /wake's cooldown, the account-wide pause)."""
    state = engine.guard_state
    if command.symbol:
        engine.guard_state = operator_holds.resume_symbol(state, command.symbol)
        line = f"{command.symbol}: entries " + ("resumed" if command.symbol in
                                                state.paused_symbols else "were not paused")
        if state.paused:
            line += "; all symbols stay paused until /resume"
        return CommandResult(True, [line, *_asleep_still(state)])
    engine.guard_state = operator_holds.resume(state)
    symbols = sorted(state.paused_symbols)
    lines = ["entries resumed" + (f" (also on {', '.join(symbols)})" if symbols else "")
             if state.paused or symbols else "entries were not paused"]
    blocked = state.entries_blocked_until        # /wake's cooldown: /resume does not end it
    if blocked is not None and blocked > engine.clock.now():
        lines.append(f"new entries after the emergency cooldown, at {blocked:%H:%M} UTC")
    return CommandResult(True, [*lines, *_asleep_still(state)])


def _asleep_still(state: GuardState) -> list[str]:
    """A /resume ends pauses, not the sleep of a /shutdown: say so rather than "resumed"."""
    return ["still asleep: no new entries until /wake"] if state.asleep else []


async def unlock(engine: Engine, command: Command) -> CommandResult:
    """/unlock SYMBOL: end its cooldown and clear its breakers (announced as cleared)."""
    symbol = command.symbol or ""
    before = engine.guard_state
    events = engine.guards.apply(breaker_rules.unlock, symbol)
    lines = [f"{symbol}: {event.text}" for event in events]
    if symbol in before.cooldowns and before.cooldowns[symbol] > engine.clock.now():
        lines.append(f"{symbol}: cooldown ended")
    if not lines:
        lines.append(NOTHING_LOCKED.format(symbol=symbol))
    return CommandResult(True, [*lines, _entries_line(engine, symbol)])


NOTHING_LOCKED = "{symbol}: nothing is locked (no cooldown, no breaker)"


def nothing_locked(engine: Engine, symbol: str) -> list[str]:
    """/unlock's answer, at once, when `symbol` has no cooldown and no breaker of its own
    running ([] when it has one: then the question is asked)."""
    state, now = engine.guard_state, engine.clock.now()
    if symbol in state.cooldowns and state.cooldowns[symbol] > now \
            or any(breaker_symbol(name) == symbol for name in state.active_breakers(now)):
        return []
    return [NOTHING_LOCKED.format(symbol=symbol), _entries_line(engine, symbol)]


def _entries_line(engine: Engine, symbol: str) -> str:
    """Whether `symbol` may be entered now: what /unlock (which clears only the symbol's own
    locks) leaves the operator to do."""
    refusal = engine.entry_refusal(symbol)
    return f"{symbol}: entries still blocked: {refusal}" if refusal \
        else f"{symbol}: entries allowed"


async def enter_by_hand(engine: Engine, command: Command) -> CommandResult:
    """/long, /short SYMBOL: one entry planned and protected like a signal's."""
    symbol = command.symbol or ""
    side = Side.BUY if command.kind is CommandKind.LONG else Side.SELL
    refusal = entry_refused(engine, symbol)
    if refusal:
        return CommandResult(False, [refused_entry_line(symbol, side, refusal)])
    # As fresh as the entry's view (Engine.enter_by_hand): a close found over REST (the
    # stream was down) brings no account event, so the balance last read may still count
    # the margin the closed position held, and refuse the entry for "insufficient margin".
    await read_balance(engine, settled=False)      # before the tick takes the stream's events
    outcome = await engine.enter_by_hand(symbol, side, f"manual /{command.kind.value} "
                                         f"({command.source})")
    if isinstance(outcome, str):
        return CommandResult(False, [refused_entry_line(symbol, side, outcome)])
    position = engine.positions.get(symbol, outcome)   # after its legs were placed
    if engine.entries.answer_lost(position):
        # Not done, not failed: the agent asks Binance by the order's id and an alert says
        # what it was (FILL, or ENTRY_NOT_FILLED), as /close's "waiting" for a lost close.
        return CommandResult(False, entry_lines(engine, position), waiting=True)
    # Failed only when refused: one that filled and was closed at once did enter.
    return CommandResult(symbol not in engine.entries.refused, entry_lines(engine, position))


def entry_refused(engine: Engine, symbol: str) -> str:
    """Why a /long or /short on `symbol` is refused now ("" when it may go on), from what
    the agent knows, without asking the exchange: said before the confirmation, and again
    when it is pressed (Engine.enter_by_hand then checks once more, with a fresh view)."""
    position = engine.positions.get(symbol)
    if position is not None and position.state is PositionState.ENTERING:
        return (f"a {position.side.label} entry on {symbol} is still being filled (/status "
                "follows it)")
    if position is not None:
        return f"{symbol} already has an open {position.side.label}; /close it first"
    refusal = engine.entry_refusal(symbol) or _regime_unread(engine, symbol)
    if refusal:
        return refusal
    seen = engine.tracker.position(symbol)       # the exchange's, at the last look
    if seen is not None and seen.side is not None:
        return (f"the exchange holds a {seen.side.label} on {symbol} that the agent does not "
                "manage; /close it first")
    return ""


def _regime_unread(engine: Engine, symbol: str) -> str:
    """Why the entry cannot be planned yet ("" once it can): the plan scales the stop and
    the size by the volatility regime of the closed candles (trader/entry.py `plan`), which
    reads nothing until ATR(slow) has its slow + 1 candles, or while they do not move.
    Not judged before the first tick: a live feed's first poll brings 300 candles of history
    (trader/market/live.py), so the press finds them; a replay's come one per tick."""
    if engine.ticks == 0:
        return ""
    closed = engine.candles[symbol].closed()
    if engine.entries.desk.regime_adjustment(symbol, closed) is not None:    # as `plan` asks
        return ""
    need = DEFAULT_THRESHOLDS.slow + 1
    if len(closed) < need:
        return (f"the volatility regime needs {need} closed candles, the agent has "
                f"{len(closed)}; try again after {plural(need - len(closed), 'more candle')}")
    return "the volatility regime cannot be read: the last candles did not move"


def refused_entry_line(symbol: str, side: Side, why: str) -> str:
    return f"{symbol}: no {side.label} entry: {why}"


def entry_lines(engine: Engine, position: Position) -> list[str]:
    """What a manual entry did, as the exchange confirmed it."""
    symbol, label = position.symbol, position.side.label
    rules = symbol_rules(engine, symbol)
    tick, step = (rules.tick_size, rules.step_size) if rules else (None, None)
    if position.state is PositionState.CLOSED:
        why = engine.entries.refused.get(symbol)
        if why is None:     # not refused: it filled, and was closed before this answer
            return [_closed_at_once(engine, position, tick, step)]
        return [f"{symbol}: the {label} entry was refused by the exchange ({why}); nothing is open"]
    size = quantity(position.quantity or position.initial_quantity, step)
    if engine.entries.answer_lost(position):
        return [f"{symbol}: {label} {size} sent; its answer was lost (Binance: execution "
                "status unknown), so whether it filled is not known yet. The agent asks "
                "Binance for it by its id (it never sends it twice) and tells you within "
                f"about {_known_within(engine)} s: FILL if it landed, ENTRY_NOT_FILLED if not "
                "(then nothing is open)"]
    if position.state is PositionState.ENTERING:
        return [f"{symbol}: {label} {size} sent; its fill is not confirmed yet (the order "
                "is followed by its id: /status shows it within seconds)"]
    return [f"{symbol}: {label} {size} filled at {price(position.entry_price, tick)}; "
            f"risk {money(position.risk_amount())} USDT at the stop{_capped(rules, position)}",
            *(_leg_line(position, leg, tick) for leg in position.legs)]


def _capped(rules: SymbolRules | None, position: Position) -> str:
    """The entry's size is the largest MARKET order Binance takes on the symbol
    (MARKET_LOT_SIZE below LOT_SIZE: trader/risk.py caps entries there), said as the cap
    it most likely is; "" otherwise, and on symbols whose two filters agree."""
    if rules is None or rules.largest_market_qty >= rules.max_qty \
            or position.initial_quantity != rules.largest_market_qty:
        return ""
    return (f" (capped: {number(rules.largest_market_qty)} is the largest market order "
            f"Binance takes on {position.symbol}, MARKET_LOT_SIZE)")


def _closed_at_once(engine: Engine, position: Position, tick: Decimal | None,
                    step: Decimal | None) -> str:
    """An entry that filled and was closed before its answer: mostly a leg whose level the
    price passed before the leg reached Binance (-2021, closed at market:
    trader/lifecycle_legs.py `on_leg_rejected`), or a stop that triggered at once. The result is the close's record,
    as the CLOSE alert says it (unknown while its fills could not be read)."""
    symbol = position.symbol
    final = engine.store.position(symbol, position.key)
    if final is None or final.state is not PositionState.CLOSED:
        final = position            # its close could not be saved: the result is not known
    size = quantity(final.traded_quantity or position.quantity or position.initial_quantity,
                    step)
    opened = (f"{symbol}: the {position.side.label} {size} filled at "
              f"{price(position.entry_price, tick)} and was closed at once")
    result = (f"closed{exit_text(final, tick)}; {engine.journal.pnl_text(final)}"
              if final.exit_price is not None
              else "its exit price and PnL are not read yet (the CLOSE alert tells them)")
    role = _CLOSING_ROLES.get(final.close_reason) if final.close_reason else None
    if role is None:
        why = final.close_reason.value if final.close_reason else "reason unknown"
        return f"{opened} ({why}); {result}"
    leg, what = final.leg(role), protection.name(role)
    level = price(leg.trigger_price, tick)
    if leg.order is None:       # never placed: Binance refused it, the level was passed
        return (f"{opened} at market: the price was already past its {what} {level} when "
                f"the {what} reached Binance; {result}")
    return f"{opened} by its {what} at {level}; {result}"


_CLOSING_ROLES = {CloseReason.STOP_LOSS: OrderRole.STOP_LOSS,
                  CloseReason.TAKE_PROFIT: OrderRole.TAKE_PROFIT}


def _known_within(engine: Engine) -> int:
    """Seconds until a lost entry is known: found at once if it landed; else it is taken for
    never placed once it cannot land any more (trader/executor.py `Executor.probe`:
    recvWindow + PROBE_GRACE after it was sent), at the next tick after that."""
    bound = engine.executor.recv_window + PROBE_GRACE
    return int(bound.total_seconds() + engine.settings.tick_seconds + 0.999)


def _leg_line(position: Position, leg: Leg, tick: Decimal | None) -> str:
    """One leg and whether it is on the exchange (the two-TP plan's legs with their part)."""
    part = position.leg_quantity(leg.role)
    state = "on the exchange" if leg.covers(part) else "being placed (/status follows it)"
    name = {OrderRole.STOP_LOSS: "stop-loss", OrderRole.TAKE_PROFIT_1: f"TP1 for {part}"}.get(
        leg.role, "take-profit" if position.take_profit_1 is None else f"TP2 for {part}")
    return f"{name} {price(leg.trigger_price, tick)}: {state}"
