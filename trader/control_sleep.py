"""/shutdown and /wake (and `tradebot shutdown|wake` from a shell): sleep first (protection
running), reconcile, cancel entry orders (a maker entry's quotes given up), optionally
flatten; wake with the emergency cooldown, saying which /pause is still on."""

from datetime import timedelta

from trader import operator_holds
from trader.alerts import Alert, AlertName
from trader.commands import ALL_SYMBOLS, Command, CommandKind, CommandResult
from trader.control_close import close_failed, close_one, goes_on, open_position
from trader.control_quotes import stop_quotes
from trader.display import duration, number, plural
from trader.domain import CloseReason, Order, OrderRole, OrderStatus
from trader.engine import Engine
from trader.guard_state import GuardState
from trader.position import Position, PositionState
from trader.startup import reconcile
from trader.views import closable

RESTART = "restart"      # a Command's source: the agent's own, finishing a flatten cut short
FINISHING = "Finishing the /shutdown's flatten that a stop cut short:"


async def shutdown(engine: Engine, command: Command) -> CommandResult:
    """Sleep (protection only), then reconcile, cancel entry orders (a maker entry's quotes
    give up, asleep), optionally flatten.

    The sleep comes first, saved and pinned (trader/intent_keeper.py) before any request, as
    an order's intent is written before it is sent: a stop or a crash in the middle (a slow
    exchange outlasts the stop's budget) must not leave a restart trading. A flatten is
    marked unfinished with it, and the mark lifted only at the end: the next start finishes
    a flatten cut short (`interrupted_flatten`). Each step is contained and reported. Not ok when
    a flatten was asked and a position is still open (asleep all the same, with that
    position protected as the lines say)."""
    # Asleep before any request, and before any entry order is cancelled: a maker entry's
    # quotes give up on it (trader/maker_quoter.py), so that none is quoted again, now or
    # after a restart.
    engine.guard_state = operator_holds.sleep(engine.guard_state, flattening=command.flatten)
    lines = [FINISHING] if command.source == RESTART else []
    lines += await engine.contained("shutdown reconcile", reconcile(engine)) or []
    for symbol in engine.symbols:
        cancelled = await engine.contained(f"shutdown cancel entries {symbol}",
                                           _cancel_entries(engine, command, symbol), symbol)
        lines += cancelled if cancelled is not None else [
            f"{symbol}: could not cancel entry orders: {engine.last_error}"]
    if command.flatten:
        lines += await _flatten_all(engine, command)
        engine.guard_state = operator_holds.flattened(engine.guard_state)
    still_open = [p for p in engine.positions.values() if p.state is not PositionState.CLOSED]
    lines.append(_asleep_line(still_open))
    if why := engine.guards.unpinned():
        lines.append(unpinned_line(why))
    _tell(engine, command, AlertName.EMERGENCY_DONE, lines)
    # "waiting" when every position left is a close the agent finishes by itself (its
    # answer lost, or its result not read back), "failed" when one needs the operator
    waiting = command.flatten and bool(still_open) \
        and all(goes_on(engine, position, lines) for position in still_open)
    return CommandResult(not (command.flatten and still_open), lines, waiting=waiting)


def unpinned_line(why: str) -> str:
    """The sleep is in the database, but Telegram has not confirmed its pinned copy (`why`),
    the only copy a restart on a wiped disk reads; the keeper goes on trying (and the
    SHUTDOWN alert says if it never did)."""
    return (f"not pinned yet ({why}): a restart on a wiped disk before it is would trade; "
            "the agent keeps trying")


def interrupted_flatten(engine: Engine) -> Command | None:
    """At start-up: the /shutdown a stop cut short in its flatten (asleep, marked
    unfinished), to run again on what is still open (the chat hears how it ended); None
    when there is none."""
    if not (engine.guard_state.asleep and engine.guard_state.flattening):
        return None
    now = engine.clock.now()
    return Command(CommandKind.SHUTDOWN, f"{RESTART}:{now.isoformat()}", now, flatten=True,
                   source=RESTART)


def already_asleep(engine: Engine) -> list[str]:
    """/shutdown's answer, at once, when the agent sleeps already with nothing open ([]
    otherwise: with a position open, "flatten everything" is still worth offering)."""
    # the flatten closes the traded symbols' positions only: one elsewhere offers nothing
    if not engine.guard_state.asleep or any(s in engine.symbols
                                             for s in closable(engine, ALL_SYMBOLS)):
        return []
    return ["Already asleep: no new entries; no open positions. /wake to trade again."]


async def _flatten_all(engine: Engine, command: Command) -> list[str]:
    lines: list[str] = []
    for symbol in engine.symbols:
        if open_position(engine, symbol) is None and _quoting(engine, symbol) is None:
            continue
        flattened = await engine.contained(
            f"shutdown flatten {symbol}",
            close_one(engine, command, symbol, CloseReason.EMERGENCY), symbol)
        lines += flattened if flattened is not None else close_failed(engine, command, symbol)
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


def _quoting(engine: Engine, symbol: str) -> Position | None:
    """The symbol's maker-first entry still quoting, not filled so far (ENTERING)."""
    position = engine.positions.get(symbol)
    if position is None or position.state is not PositionState.ENTERING \
            or not engine.entries.maker.handles(position):
        return None
    return position


async def _cancel_entries(engine: Engine, command: Command, symbol: str) -> list[str]:
    lines = await stop_quotes(engine, command, symbol)
    await engine.view.snapshot(symbol)
    for order in engine.tracker.ours_live(symbol):
        if order.role is OrderRole.ENTRY:
            final = await engine.executor.cancel_and_verify(symbol, order.client_id)
            lines.append(_entry_cancelled_line(symbol, order.client_id, final))
    return lines


def _entry_cancelled_line(symbol: str, client_id: str, final: Order | None) -> str:
    """What became of an entry order /shutdown cancelled, as the order tracker knows it
    (the cancel's answer merged with the stream: an entry whose trade won the race reads
    CANCELED in a late answer, yet it filled and its position is open)."""
    if final is None:
        return f"{symbol}: entry order cancelled, the exchange no longer lists it ({client_id})"
    if final.status is OrderStatus.FILLED:
        return (f"{symbol}: entry order filled before its cancel ({number(final.filled_qty)}):"
                f" the position is open, protection places its stop ({client_id})")
    if final.filled_qty > 0:
        # A part filled before the cancel: that part is a position the operator must hear of.
        return (f"{symbol}: entry order cancelled after {number(final.filled_qty)} of "
                f"{number(final.quantity)} filled, the exchange says {final.status.value}: "
                f"the position of {number(final.filled_qty)} is open, protection places its "
                f"stop ({client_id})")
    return (f"{symbol}: entry order cancelled, the exchange says {final.status.value} "
            f"({client_id})")


async def wake(engine: Engine, command: Command) -> CommandResult:
    """Wake from a /shutdown: reconcile, then entries after the emergency cooldown. Awake
    already: nothing is done (the cooldown belongs to waking from a shutdown)."""
    if not engine.guard_state.asleep:
        return CommandResult(True, _awake_already(engine, command), unchanged=True)
    lines = await reconcile(engine)
    cooldown = timedelta(minutes=engine.settings.emergency_cooldown_minutes)
    engine.guard_state = operator_holds.wake(engine.guard_state, engine.clock.now(), cooldown)
    after = f" after a {duration(cooldown)} cooldown" if cooldown else ""
    paused = _pauses_left(engine.guard_state)
    if not paused:
        lines.append(f"awake: trading resumes{after}")
    else:
        resume = "send /resume in Telegram" if command.source == "cli" else "send /resume"
        blocked = engine.guard_state.entries_blocked_until
        cooling = f" and for a {duration(cooldown)} cooldown, until {blocked:%H:%M} UTC" \
            if cooldown and blocked is not None else ""
        lines += [f"awake: exits and protection run; new entries wait for the end of your "
                  f"/pause{cooling}",
                  *paused, f"{resume} to trade again"]
    _tell(engine, command, AlertName.RESUMED, lines)
    return CommandResult(True, lines)


def _tell(engine: Engine, command: Command, name: AlertName, lines: list[str]) -> None:
    """The chat hears of a sleep or a wake: sent when a shell asked for it (`tradebot
    shutdown|wake`: the phone would not know), kept as answered when the phone's reply said
    it. Keyed by the request, so a second one minutes later is not dropped as a repeat."""
    engine.alerter.publish(Alert(name, "\n".join(lines), dedup_key=f"{name}:{command.command_id}",
                                 answered_in_reply=command.source == "telegram"),
                           engine.clock.now())


def _awake_already(engine: Engine, command: Command) -> list[str]:
    """/wake while awake: nothing to wake; what holds entries back, if anything does."""
    paused = _pauses_left(engine.guard_state)
    blocked = engine.guard_state.entries_blocked_until
    cooling = [f"new entries after the emergency cooldown, at {blocked:%H:%M} UTC"] \
        if blocked is not None and blocked > engine.clock.now() else []
    if not paused and not cooling:
        return ["already awake: nothing to wake; trading runs"]
    resume = "send /resume in Telegram" if command.source == "cli" else "send /resume"
    return ["already awake: nothing to wake", *paused, *cooling,
            *([f"{resume} to trade again"] if paused else [])]


def _pauses_left(state: GuardState) -> list[str]:
    """The pauses a /wake leaves on (it ends the sleep, not a /pause), one line each."""
    lines = []
    if state.paused:
        until = f"{state.paused_until:%H:%M} UTC" if state.paused_until else "/resume"
        lines.append(f"entries stay paused until {until}")
    lines += [f"{symbol}: entries stay paused until "
              f"{f'{until:%H:%M} UTC' if until else f'/resume {symbol}'}"
              for symbol, until in sorted(state.paused_symbols.items())]
    return lines
