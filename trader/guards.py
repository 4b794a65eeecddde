"""Entry guards: whether an entry may buy on a symbol now, and why not. One rule for a new
entry (`allow_entry`) and for one still working (`entries_held`: a maker entry's quotes
give up, trader/maker_quoter.py): the operator's sleep and pauses, a failed save, the
emergency cooldown after /wake, a tripped breaker covering the symbol, its cooldown.
Exits and protection are never blocked by them. Also what ends by itself (`expire`,
`earliest_end`) and the /status lines (`describe`).

The state is trader/guard_state.py's `GuardState`; the rules that change it are
trader/breaker_rules.py, trader/cooldowns.py and trader/operator_holds.py. Pure: `now` is
passed in.
"""

from datetime import datetime
from typing import Any

from loguru import logger

from trader.display import breaker_label
from trader.evolve import evolve
from trader.guard_state import GuardEvent, GuardEventKind, GuardState, Outcome, breaker_symbol
from trader.operator_holds import operator_hold


def allow_entry(state: GuardState, symbol: str, now: datetime) -> tuple[bool, str]:
    """Whether a new entry on `symbol` is allowed now, and why not (in a /long's refusal
    the operator's hold says what to send to trade again). Gates entries only."""
    hold = operator_hold(state, symbol, now)
    why = hold.refusal if hold is not None else _guarded(state, symbol, now)
    return not why, why


def entries_held(state: GuardState, symbol: str, now: datetime) -> str:
    """Why no entry on `symbol` may buy now, a new one or one still working ("" when it
    may): `allow_entry`'s rule, in the words of what holds it. A maker entry still quoting
    gives up (trader/maker_quoter.py): a breaker exists to stop buying into a crash or
    across a wide spread, and the quote resting or the market rest at its timeout would
    buy into it all the same."""
    hold = operator_hold(state, symbol, now)
    return hold.held if hold is not None else _guarded(state, symbol, now)


def _guarded(state: GuardState, symbol: str, now: datetime) -> str:
    """Why the guards themselves refuse entries on `symbol` now ("" when none does): a
    failed save, the emergency cooldown after /wake, a breaker of the symbol or of every
    symbol, the symbol's cooldown; the reason names it and when it ends."""
    if state.save_failure:
        return "state could not be saved: entries blocked until storage recovers"
    if state.entries_blocked_until is not None and state.entries_blocked_until > now:
        return f"emergency cooldown until {state.entries_blocked_until:%H:%M} UTC"
    if state.breakers:        # most ticks: none (the sort below is for a stable reason)
        for name, until in sorted(state.active_breakers(now).items()):
            if breaker_symbol(name) in ("", symbol):
                return f"{breaker_label(name)} active until {until:%H:%M} UTC"
    cooldown = state.cooldowns.get(symbol)
    if cooldown is not None and cooldown > now:
        return f"{symbol} cooling down until {cooldown:%H:%M:%S} UTC"
    return ""


def set_save_failure(state: GuardState, failed: bool) -> GuardState:
    """Block entries while state cannot be saved (SaveStateFailure); clear on recovery."""
    return evolve(state, save_failure=failed)


def expire(state: GuardState, now: datetime) -> Outcome:
    """Drop ended breakers, cooldowns, timed pauses and emergency cooldowns.

    Cleared events for breakers and pauses (cooldown ends are routine: no event).
    """
    if not _anything_ends(state, now):
        return state, []   # nothing ended (most ticks): no new state to build and compare
    events = [GuardEvent(GuardEventKind.CLEARED, name, breaker_symbol(name),
                         f"{breaker_label(name)} cleared; entries allowed again")
              for name, until in state.breakers.items() if until <= now]
    changes: dict[str, Any] = {
        "breakers": state.active_breakers(now),
        "cooldowns": {symbol: until for symbol, until in state.cooldowns.items() if until > now},
    }
    if state.paused and state.paused_until is not None and state.paused_until <= now:
        changes.update(paused=False, paused_until=None)
        events.append(GuardEvent(GuardEventKind.CLEARED, "pause", "", "pause ended; entries resume"))
    ended = sorted(s for s, until in state.paused_symbols.items() if until is not None and until <= now)
    if ended:
        changes["paused_symbols"] = {s: u for s, u in state.paused_symbols.items() if s not in ended}
        events += [GuardEvent(GuardEventKind.CLEARED, "pause", symbol,
                              f"{symbol}: pause ended; entries resume") for symbol in ended]
    if state.entries_blocked_until is not None and state.entries_blocked_until <= now:
        changes["entries_blocked_until"] = None
        events.append(GuardEvent(GuardEventKind.CLEARED, "emergency_cooldown", "",
                                 "emergency cooldown ended; entries allowed again"))
    for event in events:
        logger.info("guard cleared name={} symbol={}", event.name, event.symbol or "-")
    return evolve(state, **changes), events


def _anything_ends(state: GuardState, now: datetime) -> bool:
    """Whether `expire` has anything to drop at `now`: a breaker, cooldown, timed pause or
    emergency cooldown that ended."""
    return bool(
        (state.breakers and min(state.breakers.values()) <= now)
        or (state.cooldowns and min(state.cooldowns.values()) <= now)
        or (state.paused and state.paused_until is not None and state.paused_until <= now)
        or (state.paused_symbols and any(until is not None and until <= now
                                         for until in state.paused_symbols.values()))
        or (state.entries_blocked_until is not None and state.entries_blocked_until <= now))


def earliest_end(state: GuardState) -> datetime | None:
    """When the first breaker, cooldown, timed pause or emergency cooldown of `state` ends
    (None: nothing ends by itself): `expire(state, now)` changes nothing before it, as
    `_anything_ends(state, now)` is True exactly from then on."""
    ends = [*state.breakers.values(), *state.cooldowns.values(),
            *(until for until in state.paused_symbols.values() if until is not None)]
    if state.paused and state.paused_until is not None:
        ends.append(state.paused_until)
    if state.entries_blocked_until is not None:
        ends.append(state.entries_blocked_until)
    return min(ends) if ends else None


def describe(state: GuardState, now: datetime) -> list[str]:
    """Human-readable active breakers for /status: "crash breaker on XRPUSDT until 12:10 UTC",
    and /wake's emergency cooldown while it refuses entries."""
    active = [f"{breaker_label(name)} until {until:%H:%M} UTC"
              for name, until in sorted(state.active_breakers(now).items())]
    blocked = state.entries_blocked_until
    if blocked is not None and blocked > now:
        active.append(f"entries wait after /wake until {blocked:%H:%M} UTC")
    return active
