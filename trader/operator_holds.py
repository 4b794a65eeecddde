"""The operator's holds on entries: the sleep of a /shutdown (no entries at all until /wake,
and the emergency cooldown /wake may leave) and the pauses, account-wide (`paused`) or of
one symbol (`paused_symbols`, /pause SYMBOL), either with an end (trader/guards.py
`expire` lifts it) or until /resume. Pure rules on the guards' state.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from trader.evolve import evolve
from trader.guard_state import GuardState


def pause_holding(state: GuardState, symbol: str,
                  now: datetime) -> tuple[str, datetime | None] | None:
    """The pause that holds new entries on `symbol` now, as (its symbol, its end): "" for
    the account-wide /pause; the end None until /resume. None when none covers the symbol
    or each has ended (`expire` lifts it later)."""
    if state.paused and (state.paused_until is None or state.paused_until > now):
        return "", state.paused_until
    if symbol in state.paused_symbols:
        until = state.paused_symbols[symbol]
        if until is None or until > now:
            return symbol, until
    return None


@dataclass(frozen=True, slots=True)
class OperatorHold:
    """A hold of the operator's on a symbol's entries, in the words of each who hears it."""
    refusal: str     # a new entry refused: "asleep: send /wake to trade again"
    held: str        # an entry still working given up: "the agent sleeps (/shutdown)"


def operator_hold(state: GuardState, symbol: str, now: datetime) -> OperatorHold | None:
    """The operator's hold on entries on `symbol` now: the sleep of a /shutdown, else a
    /pause that covers the symbol; None when neither does."""
    if state.asleep:
        return OperatorHold("asleep: send /wake to trade again", "the agent sleeps (/shutdown)")
    pause = pause_holding(state, symbol, now)
    if pause is None:
        return None
    scope, end = pause
    until = f" until {end:%H:%M} UTC" if end else ""
    if not scope:
        return OperatorHold(f"paused{until}: /resume to trade again",
                            "entries are paused (/pause)")
    return OperatorHold(f"{symbol} paused{until}: /resume {symbol} to trade it again",
                        f"{symbol} is paused (/pause {symbol})")


def pause(state: GuardState, until: datetime | None = None) -> GuardState:
    """Pause new entries until `until` (expire() ends it), or until resume() when None."""
    return evolve(state, paused=True, paused_until=until)


def resume(state: GuardState) -> GuardState:
    """Resume every entry: the account-wide pause and each symbol's pause end."""
    return evolve(state, paused=False, paused_until=None, paused_symbols={})


def pause_symbol(state: GuardState, symbol: str, until: datetime | None = None) -> GuardState:
    """Pause new entries on one symbol until `until` (expire() ends it), or until /resume."""
    return evolve(state, paused_symbols={**state.paused_symbols, symbol: until})


def resume_symbol(state: GuardState, symbol: str) -> GuardState:
    """End one symbol's pause (the account-wide pause, if any, stays)."""
    remaining = {s: until for s, until in state.paused_symbols.items() if s != symbol}
    return evolve(state, paused_symbols=remaining)


def sleep(state: GuardState, flattening: bool = False) -> GuardState:
    """Asleep (after /shutdown): no entries at all until wake(). `flattening`: the /shutdown
    also closes every position, until flattened() says it ran to its end."""
    return evolve(state, asleep=True, flattening=state.flattening or flattening)


def flattened(state: GuardState) -> GuardState:
    """The /shutdown's flatten ran to its end (each close done or reported failed)."""
    return evolve(state, flattening=False)


def wake(state: GuardState, now: datetime, emergency_cooldown: timedelta | None = None) -> GuardState:
    """Wake up; after an emergency, entries stay blocked for `emergency_cooldown`."""
    blocked = now + emergency_cooldown if emergency_cooldown else None
    return evolve(state, asleep=False, flattening=False, entries_blocked_until=blocked)

