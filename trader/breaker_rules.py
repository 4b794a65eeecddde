"""The breakers' pure rules: when a spread, a funding jump, a crash, an EXTREME regime or a
streak of API failures trips (or extends) a breaker, and the operator's hand clearing one.
Each takes the values the engine passes in (live spread, funding, closed candles) plus
`now`, and returns the new state and the events to alert on (trader/guard_state.py
`Outcome`); nothing here reads the clock or replays history. A tripped breaker holds every
entry it covers, the one still working included (trader/guards.py `entries_held`).
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from loguru import logger

from trader.display import breaker_label
from trader.domain import Candle
from trader.evolve import evolve
from trader.guard_state import (
    API_BREAKER,
    DEFAULT_CONFIG,
    GuardConfig,
    GuardEvent,
    GuardEventKind,
    GuardState,
    Outcome,
    breaker_name,
    breaker_symbol,
)
from trader.market.indicators import MedianWindow, highest_high, lowest_low, rolling_median
from trader.strategy.regime import Regime


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

