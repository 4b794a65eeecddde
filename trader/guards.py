"""Entry guards: circuit breakers, per-symbol cooldowns, crash guard, pause and sleep.

Guards only ever gate NEW ENTRIES; exits and protection are never blocked by them.
`GuardState` is a frozen value persisted by trader/guard_book.py, so tripped breakers
survive a restart. Every check takes the values the engine passes
in (live spread, funding, closed candles, persisted equity snapshots checked against
the exchange) plus `now`, and returns the new state and the events to alert on; nothing
here reads the clock or replays history.

Breaker names are `<kind>:<SYMBOL>` for per-symbol breakers (spread, funding, crash,
regime) and `<kind>` alone for account-wide ones (api): a global breaker blocks every
symbol. Texts meant for the operator name them in words (`trader.display.breaker_label`).

A pause is account-wide (`paused`) or for one symbol (`paused_symbols`, /pause SYMBOL);
either may have an end (`expire` lifts it) or last until /resume.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from loguru import logger

from trader.display import breaker_label
from trader.domain import Candle
from trader.evolve import evolve
from trader.market.indicators import MedianWindow, highest_high, lowest_low, rolling_median
from trader.strategy.regime import Regime

API_BREAKER = "api"


class GuardEventKind(StrEnum):
    TRIPPED = "tripped"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class GuardEvent:
    kind: GuardEventKind
    name: str                         # breaker name, "pause" or "emergency_cooldown"
    symbol: str                       # "" for account-wide events
    text: str


@dataclass(frozen=True, slots=True)
class GuardConfig:
    spread_mult: Decimal = Decimal("1.2")
    spread_min_ticks: int = 2      # a spread of this many ticks or fewer never trips (tick noise)
    funding_jump: Decimal = Decimal("0.001")
    crash_candles: int = 5
    crash_move: Decimal = Decimal("0.03")
    api_failure_streak: int = 5
    breaker_minutes: int = 10
    cooldown_minutes: int = 5
    loss_streak_len: int = 3
    loss_streak_mult: int = 3

    @property
    def breaker_duration(self) -> timedelta:
        return timedelta(minutes=self.breaker_minutes)


@dataclass(frozen=True, slots=True)
class GuardState:
    breakers: dict[str, datetime] = field(default_factory=dict)    # name -> until
    cooldowns: dict[str, datetime] = field(default_factory=dict)   # symbol -> until
    paused: bool = False
    paused_until: datetime | None = None                          # None = until /resume
    asleep: bool = False
    save_failure: bool = False
    loss_streak: dict[str, int] = field(default_factory=dict)
    api_failures: int = 0
    entries_blocked_until: datetime | None = None                 # emergency cooldown
    paused_symbols: dict[str, datetime | None] = field(default_factory=dict)  # None = /resume
    # A /shutdown's flatten asked and not finished: set with the sleep, before the first
    # close, so that a stop in the middle leaves it for the next start to finish.
    flattening: bool = False

    def active_breakers(self, now: datetime) -> dict[str, datetime]:
        return {name: until for name, until in self.breakers.items() if until > now}


def restored(loaded: GuardState) -> GuardState:
    """A state as storage.codec loads it (dict values as stored: ISO text, JSON numbers)
    with its datetimes and counts restored. Done once, where a state is read back
    (trader/guard_book.py `load_state`), not in the class's `__post_init__`: that ran on
    every copy the rules make (~2 a trade) and kept them off `evolve`."""
    return evolve(loaded, breakers=_datetimes(loaded.breakers),
                  cooldowns=_datetimes(loaded.cooldowns),
                  paused_symbols=_datetimes(loaded.paused_symbols),
                  loss_streak={key: int(value) for key, value in loaded.loss_streak.items()})


def _datetimes(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: _as_datetime(value) for key, value in raw.items()}


def _as_datetime(value: datetime | str | None) -> datetime | None:
    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(value)


Outcome = tuple[GuardState, list[GuardEvent]]
DEFAULT_CONFIG = GuardConfig()


def breaker_name(kind: str, symbol: str = "") -> str:
    return f"{kind}:{symbol}" if symbol else kind


def breaker_symbol(name: str) -> str:
    """The symbol a breaker applies to ("" for an account-wide breaker)."""
    return name.partition(":")[2]


def _trip(state: GuardState, kind: str, symbol: str, now: datetime, cfg: GuardConfig,
          text: str) -> Outcome:
    """Trip (or extend) a breaker; an event only when it was not already tripped (one that
    ran out but was not cleared yet is extended: no clear and trip pair for one episode)."""
    name = breaker_name(kind, symbol)
    was_active = name in state.breakers
    until = max(state.breakers.get(name, now), now + cfg.breaker_duration)
    new_state = evolve(state, breakers={**state.breakers, name: until})
    if was_active:
        return new_state, []
    logger.warning("breaker tripped name={} symbol={} until={} reason={}",
                   name, symbol or "-", until.isoformat(), text)
    return new_state, [GuardEvent(GuardEventKind.TRIPPED, name, symbol,
                                  f"{text}; new entries paused until {until:%H:%M} UTC")]


def check_spread(state: GuardState, symbol: str, spread_pct: Decimal, spread_ticks: Decimal,
                 spread_history: Sequence[Decimal] | MedianWindow, now: datetime,
                 cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """Trip when the spread (ask - bid, as a fraction of the mid: `spread_pct`) exceeds
    spread_mult x its rolling median AND is wider than spread_min_ticks ticks
    (`spread_ticks` = (ask - bid) / tick size). The floor is in ticks, not a percentage:
    a liquid book quotes one tick wide (BTC: 0.1 on 50,000 = 0.0002 %), so one tick more
    doubles its median without meaning anything, while any percentage floor high enough to
    ignore that on cheap coins is one BTC and ETH never reach."""
    if not spread_history or spread_ticks <= cfg.spread_min_ticks:
        return state, []
    median = spread_history.median() if isinstance(spread_history, MedianWindow) \
        else rolling_median(spread_history)
    if median <= 0 or spread_pct <= cfg.spread_mult * median:
        return state, []
    return _trip(state, "spread", symbol, now, cfg,
                 f"{symbol} spread {spread_pct:.4%} ({spread_ticks.normalize():f} ticks) > "
                 f"{cfg.spread_mult} x median {median:.4%}")


def check_funding(state: GuardState, symbol: str, rate_now: Decimal,
                  rate_hour_ago: Decimal | None, now: datetime,
                  cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """Trip when the funding rate moved by more than funding_jump within the hour."""
    if rate_hour_ago is None or abs(rate_now - rate_hour_ago) <= cfg.funding_jump:
        return state, []
    return _trip(state, "funding", symbol, now, cfg,
                 f"{symbol} funding rate jumped {rate_hour_ago:.4%} -> {rate_now:.4%} in an hour")


def check_crash(state: GuardState, symbol: str, closed: Sequence[Candle], now: datetime,
                cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """Trip when the high-low range of the last crash_candles closed candles is at least
    crash_move of the lowest low (a violent move either way)."""
    return trip_crash(state, symbol, crash_move(closed, cfg), now, cfg)


def crash_move(closed: Sequence[Candle], cfg: GuardConfig = DEFAULT_CONFIG) -> str | None:
    """The crash breaker's reading of the closed candles: what the move was ("crash: 3.41 %
    range in 5 candles (>= 3 %)"), or None when it is no crash. It depends on the candles
    alone, so a caller may keep it until the next candle closes (trader/breakers.py)."""
    recent = closed[-cfg.crash_candles:]
    if len(recent) < cfg.crash_candles:
        return None
    low, high = lowest_low(recent), highest_high(recent)
    if low <= 0 or (high - low) / low < cfg.crash_move:
        return None
    direction = "crash" if recent[-1].close - recent[0].open < 0 else "spike"
    return (f"{direction}: {(high - low) / low:.2%} range in {cfg.crash_candles} candles "
            f"(>= {cfg.crash_move:.0%})")


def trip_crash(state: GuardState, symbol: str, move: str | None, now: datetime,
               cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """`check_crash` on a `crash_move` reading: trip (or extend) the crash breaker while
    the move lasts; nothing when `move` is None."""
    if move is None:
        return state, []
    return _trip(state, "crash", symbol, now, cfg, f"{symbol} {move}")


def check_regime(state: GuardState, symbol: str, regime: Regime, now: datetime,
                 cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """Trip while the volatility regime is EXTREME."""
    if regime is not Regime.EXTREME:
        return state, []
    return _trip(state, "regime", symbol, now, cfg, f"{symbol} volatility regime EXTREME")


def record_api_result(state: GuardState, ok: bool, now: datetime,
                      cfg: GuardConfig = DEFAULT_CONFIG) -> Outcome:
    """Count consecutive API failures; a streak of api_failure_streak trips the
    account-wide API breaker. One success resets the streak."""
    if ok:
        return (evolve(state, api_failures=0), []) if state.api_failures else (state, [])
    failures = state.api_failures + 1
    counted = evolve(state, api_failures=failures)
    if failures < cfg.api_failure_streak:
        return counted, []
    return _trip(counted, API_BREAKER, "", now, cfg,
                 f"{failures} API failures in a row")


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


def start_cooldown(state: GuardState, symbol: str, now: datetime, loss: bool | None,
                   cfg: GuardConfig = DEFAULT_CONFIG, base: timedelta | None = None) -> GuardState:
    """Start the cooldown after a close: `base` (default cooldown_minutes), times
    loss_streak_mult once loss_streak_len losses in a row are reached on the symbol.
    `loss` None: the close's result is not known yet (its closing fills unread: inside an
    IP ban, or a failed read); it is neither a loss nor a win, so the streak stays as it is
    until the close read-back counts it (`count_read_back`)."""
    streak = state.loss_streak.get(symbol, 0)
    if loss is not None:
        streak = streak + 1 if loss else 0
    duration = base if base is not None else timedelta(minutes=cfg.cooldown_minutes)
    if streak >= cfg.loss_streak_len:
        duration *= cfg.loss_streak_mult
    until = max(state.cooldowns.get(symbol, now), now + duration)
    logger.info("cooldown symbol={} until={} loss_streak={}", symbol, until.isoformat(), streak)
    return evolve(state, cooldowns={**state.cooldowns, symbol: until},
                   loss_streak={**state.loss_streak, symbol: streak})


def count_read_back(state: GuardState, symbol: str, loss: bool, later: Sequence[bool],
                    last_close: datetime, now: datetime, cfg: GuardConfig = DEFAULT_CONFIG,
                    base: timedelta | None = None) -> GuardState:
    """Count a close whose result became known after it (trader/close_readback.py) into the
    symbol's loss streak, as `start_cooldown` would have counted it at the close (which
    left the streak as it was). `later`: the known results (loss or not) of the symbol's
    closes after it, each counted at its own close. A win among them reset the streak since:
    nothing changes. Else a loss adds one, and a win resets the streak to the losses after
    it. A streak that reaches loss_streak_len lengthens the cooldown of the symbol's last
    close (`last_close`, its `base`) to what it would have been, if that is not over yet;
    a cooldown already running is never shortened."""
    if not all(later):
        return state
    streak = state.loss_streak.get(symbol, 0) + 1 if loss else len(later)
    changes: dict[str, Any] = {"loss_streak": {**state.loss_streak, symbol: streak}}
    duration = base if base is not None else timedelta(minutes=cfg.cooldown_minutes)
    until = last_close + duration * cfg.loss_streak_mult
    if loss and streak >= cfg.loss_streak_len and until > max(state.cooldowns.get(symbol, now), now):
        changes["cooldowns"] = {**state.cooldowns, symbol: until}
    logger.info("close read back counted symbol={} loss={} loss_streak={} cooldown_until={}",
                symbol, loss, streak, changes.get("cooldowns", state.cooldowns).get(symbol))
    return evolve(state, **changes)


def allow_entry(state: GuardState, symbol: str, now: datetime) -> tuple[bool, str]:
    """Whether a new entry on `symbol` is allowed now, and why not. Gates entries only."""
    if state.asleep:
        return False, "asleep: send /wake to trade again"
    if state.save_failure:
        return False, "state could not be saved: entries blocked until storage recovers"
    pause = pause_holding(state, symbol, now)
    if pause is not None:
        scope, end = pause
        until = f" until {end:%H:%M} UTC" if end else ""
        if not scope:
            return False, f"paused{until}: /resume to trade again"
        return False, f"{symbol} paused{until}: /resume {symbol} to trade it again"
    if state.entries_blocked_until is not None and state.entries_blocked_until > now:
        return False, f"emergency cooldown until {state.entries_blocked_until:%H:%M} UTC"
    if state.breakers:        # most ticks: none (the sort below is for a stable reason)
        for name, until in sorted(state.active_breakers(now).items()):
            if breaker_symbol(name) in ("", symbol):
                return False, f"{breaker_label(name)} active until {until:%H:%M} UTC"
    cooldown = state.cooldowns.get(symbol)
    if cooldown is not None and cooldown > now:
        return False, f"{symbol} cooling down until {cooldown:%H:%M:%S} UTC"
    return True, ""


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


def entries_held(state: GuardState, symbol: str, now: datetime) -> str:
    """Why the operator holds new entries on `symbol` now ("" when nothing does): the sleep
    of a /shutdown, or a /pause that covers the symbol. An entry still working is held too
    (a maker entry's quotes give up: trader/maker_quoter.py); breakers and cooldowns only
    gate the next entry."""
    if state.asleep:
        return "the agent sleeps (/shutdown)"
    pause = pause_holding(state, symbol, now)
    if pause is None:
        return ""
    return f"{symbol} is paused (/pause {symbol})" if pause[0] else "entries are paused (/pause)"


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


def set_save_failure(state: GuardState, failed: bool) -> GuardState:
    """Block entries while state cannot be saved (SaveStateFailure); clear on recovery."""
    return evolve(state, save_failure=failed)


def clear_breaker(state: GuardState, name: str) -> Outcome:
    """Clear one breaker by hand (operator), with its cleared event."""
    if name not in state.breakers:
        return state, []
    remaining = {key: until for key, until in state.breakers.items() if key != name}
    return evolve(state, breakers=remaining), [
        GuardEvent(GuardEventKind.CLEARED, name, breaker_symbol(name),
                   f"{breaker_label(name)} cleared by the operator")]


def unlock(state: GuardState, symbol: str) -> Outcome:
    """/unlock SYMBOL: end the symbol's cooldown and clear its own breakers (not the
    account-wide ones, nor a pause: /resume does that). One cleared event per breaker."""
    events: list[GuardEvent] = []
    for name in sorted(state.breakers):
        if breaker_symbol(name) == symbol:
            state, cleared = clear_breaker(state, name)
            events += cleared
    if symbol in state.cooldowns:
        state = evolve(state, cooldowns={s: u for s, u in state.cooldowns.items() if s != symbol})
    return state, events


def describe(state: GuardState, now: datetime) -> list[str]:
    """Human-readable active breakers for /status: "crash breaker on XRPUSDT until 12:10 UTC",
    and /wake's emergency cooldown while it refuses entries."""
    active = [f"{breaker_label(name)} until {until:%H:%M} UTC"
              for name, until in sorted(state.active_breakers(now).items())]
    blocked = state.entries_blocked_until
    if blocked is not None and blocked > now:
        active.append(f"entries wait after /wake until {blocked:%H:%M} UTC")
    return active
