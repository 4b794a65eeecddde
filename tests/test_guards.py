"""Guards: every circuit breaker trips and clears with events, breakers and pauses gate
entries, cooldowns lengthen after a loss streak, and tripped breakers survive a restart."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.codec import dumps, loads
from trader.breaker_rules import (
    check_crash,
    check_funding,
    check_regime,
    check_spread,
    clear_breaker,
    record_api_result,
)
from trader.cooldowns import start_cooldown
from trader.display import breaker_label
from trader.domain import Candle
from trader.guard_book import dump_state, load_state
from trader.guard_state import GuardConfig, GuardEventKind, GuardState, restored
from trader.guards import allow_entry, describe, expire, set_save_failure
from trader.operator_holds import pause, resume, sleep, wake
from trader.strategy.regime import Regime

D = Decimal
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
CFG = GuardConfig()
SYMBOL = "BTCUSDT"
Outcome = tuple[GuardState, list]


def candles(closes: list[str]) -> list[Candle]:
    out, previous = [], D(closes[0])
    for i, text in enumerate(closes):
        close = D(text)
        out.append(Candle(SYMBOL, NOW + timedelta(minutes=i), timedelta(minutes=1), previous,
                          max(previous, close), min(previous, close), close))
        previous = close
    return out


def trip_spread(state: GuardState) -> Outcome:
    return check_spread(state, SYMBOL, D("0.0012"), D("12"), [D("0.0008"), D("0.0009"), D("0.001")],
                        NOW, CFG)


def trip_funding(state: GuardState) -> Outcome:
    return check_funding(state, SYMBOL, D("0.0012"), D("0.0001"), NOW, CFG)


def trip_crash(state: GuardState) -> Outcome:
    return check_crash(state, SYMBOL, candles(["100", "99", "98", "97.5", "97"]), NOW, CFG)


def trip_regime(state: GuardState) -> Outcome:
    return check_regime(state, SYMBOL, Regime.EXTREME, NOW, CFG)


def trip_api(state: GuardState) -> Outcome:
    events: list = []
    for _ in range(CFG.api_failure_streak):
        state, new = record_api_result(state, False, NOW, CFG)
        events += new
    return state, events


TRIPS: dict[str, Callable[[GuardState], Outcome]] = {
    "spread:BTCUSDT": trip_spread, "funding:BTCUSDT": trip_funding,
    "crash:BTCUSDT": trip_crash, "regime:BTCUSDT": trip_regime, "api": trip_api,
}


@pytest.mark.parametrize("name", list(TRIPS))
def test_every_breaker_trips_blocks_entries_and_clears_with_events(name: str) -> None:
    state, events = TRIPS[name](GuardState())
    assert [(e.kind, e.name) for e in events] == [(GuardEventKind.TRIPPED, name)]
    assert events[0].text
    allowed, reason = allow_entry(state, SYMBOL, NOW + timedelta(minutes=9))
    assert not allowed and breaker_label(name) in reason
    state, events = expire(state, NOW + timedelta(minutes=9, seconds=59))
    assert events == []
    state, events = expire(state, NOW + timedelta(minutes=10))
    assert [(e.kind, e.name) for e in events] == [(GuardEventKind.CLEARED, name)]
    assert allow_entry(state, SYMBOL, NOW + timedelta(minutes=10)) == (True, "")


def test_symbol_breaker_blocks_only_its_symbol_but_api_breaker_blocks_all() -> None:
    state, _ = trip_spread(GuardState())
    assert allow_entry(state, "ETHUSDT", NOW)[0]
    state, _ = trip_api(GuardState())
    assert not allow_entry(state, "ETHUSDT", NOW)[0]


def test_a_breaker_tripping_again_extends_it_without_a_second_alert() -> None:
    state, _ = trip_regime(GuardState())
    later = NOW + timedelta(minutes=5)
    state, events = check_regime(state, SYMBOL, Regime.EXTREME, later, CFG)
    assert events == []
    assert state.breakers["regime:BTCUSDT"] == later + timedelta(minutes=10)


def test_normal_values_do_not_trip() -> None:
    state = GuardState()
    history = [D("0.0008"), D("0.0009"), D("0.001")]
    assert check_spread(state, SYMBOL, D("0.00107"), D("10.7"), history, NOW, CFG) == (state, [])
    assert check_spread(state, SYMBOL, D("0.0004"), D("2"), [D("0.0001")], NOW, CFG) == (state, []), \
        "a spread of 2 ticks or fewer is tick noise"
    assert check_spread(state, SYMBOL, D("0.01"), D("100"), [], NOW, CFG) == (state, [])
    assert check_funding(state, SYMBOL, D("0.0011"), D("0.0001"), NOW, CFG) == (state, [])
    assert check_funding(state, SYMBOL, D("0.01"), None, NOW, CFG) == (state, [])
    assert check_crash(state, SYMBOL, candles(["100", "99", "98.5", "98", "97.1"]), NOW, CFG) == (state, [])
    assert check_crash(state, SYMBOL, candles(["100", "90"]), NOW, CFG) == (state, []), \
        "too few candles to judge"
    assert check_regime(state, SYMBOL, Regime.HIGH, NOW, CFG) == (state, [])


def test_a_spike_up_trips_the_crash_guard_too() -> None:
    _, events = check_crash(GuardState(), SYMBOL, candles(["100", "101", "102", "103", "103.2"]),
                            NOW, CFG)
    assert events and "spike" in events[0].text


def test_api_success_resets_the_failure_streak() -> None:
    state = GuardState()
    for _ in range(CFG.api_failure_streak - 1):
        state, events = record_api_result(state, False, NOW, CFG)
        assert events == []
    state, _ = record_api_result(state, True, NOW, CFG)
    state, events = record_api_result(state, False, NOW, CFG)
    assert state.api_failures == 1 and events == []


def test_breaker_duration_is_configurable() -> None:
    state, _ = check_regime(GuardState(), SYMBOL, Regime.EXTREME, NOW, GuardConfig(breaker_minutes=5))
    assert state.breakers["regime:BTCUSDT"] == NOW + timedelta(minutes=5)


def test_cooldown_is_five_minutes_after_a_close() -> None:
    state = start_cooldown(GuardState(), SYMBOL, NOW, loss=False, cfg=CFG)
    assert not allow_entry(state, SYMBOL, NOW + timedelta(minutes=4, seconds=59))[0]
    assert allow_entry(state, SYMBOL, NOW + timedelta(minutes=5))[0]
    assert allow_entry(state, "ETHUSDT", NOW)[0]


def test_cooldown_is_longer_after_a_loss_streak_and_a_win_resets_it() -> None:
    state = GuardState()
    for _ in range(2):
        state = start_cooldown(state, SYMBOL, NOW, loss=True, cfg=CFG)
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=5)
    state = start_cooldown(state, SYMBOL, NOW, loss=True, cfg=CFG)
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=15)
    later = NOW + timedelta(hours=1)
    state = start_cooldown(state, SYMBOL, later, loss=False, cfg=CFG)
    assert state.loss_streak[SYMBOL] == 0
    assert state.cooldowns[SYMBOL] == later + timedelta(minutes=5)


def test_signal_cooldown_overrides_the_default_base() -> None:
    state = start_cooldown(GuardState(), SYMBOL, NOW, loss=False, cfg=CFG, base=timedelta(minutes=2))
    assert state.cooldowns[SYMBOL] == NOW + timedelta(minutes=2)


def test_expired_cooldowns_are_dropped_silently() -> None:
    state = start_cooldown(GuardState(), SYMBOL, NOW, loss=False, cfg=CFG)
    state, events = expire(state, NOW + timedelta(minutes=6))
    assert state.cooldowns == {} and events == []


def test_pause_blocks_entries_until_resume() -> None:
    state = pause(GuardState())
    allowed, reason = allow_entry(state, SYMBOL, NOW + timedelta(days=3))
    assert not allowed and "paused" in reason
    assert allow_entry(resume(state), SYMBOL, NOW)[0]


def test_timed_pause_ends_by_itself_with_an_event() -> None:
    state = pause(GuardState(), NOW + timedelta(minutes=30))
    assert not allow_entry(state, SYMBOL, NOW + timedelta(minutes=29))[0]
    state, events = expire(state, NOW + timedelta(minutes=30))
    assert [(e.kind, e.name) for e in events] == [(GuardEventKind.CLEARED, "pause")]
    assert not state.paused and allow_entry(state, SYMBOL, NOW + timedelta(minutes=30))[0]


def test_sleep_blocks_until_wake_and_emergency_cooldown_follows_wake() -> None:
    state = sleep(GuardState())
    assert "wake" in allow_entry(state, SYMBOL, NOW)[1]
    state = wake(state, NOW, emergency_cooldown=timedelta(minutes=30))
    allowed, reason = allow_entry(state, SYMBOL, NOW + timedelta(minutes=29))
    assert not allowed and "emergency" in reason
    state, events = expire(state, NOW + timedelta(minutes=30))
    assert [e.name for e in events] == ["emergency_cooldown"]
    assert allow_entry(state, SYMBOL, NOW + timedelta(minutes=30))[0]


def test_save_failure_blocks_entries_until_cleared() -> None:
    state = set_save_failure(GuardState(), True)
    assert not allow_entry(state, SYMBOL, NOW)[0]
    assert allow_entry(set_save_failure(state, False), SYMBOL, NOW)[0]


def test_tripped_breakers_and_cooldowns_survive_a_restart_through_the_codec() -> None:
    state, _ = trip_crash(GuardState())
    state = start_cooldown(state, "ETHUSDT", NOW, loss=True, cfg=CFG)
    state = pause(state, NOW + timedelta(minutes=20))
    back = load_state(dumps(state))     # the codec's text, as the store keeps it
    assert back == state
    assert load_state(json.loads(json.dumps(dump_state(state)))) == state
    assert restored(loads(GuardState, dumps(state))) == state
    assert not allow_entry(back, SYMBOL, NOW + timedelta(minutes=1))[0]
    assert isinstance(back.breakers["crash:BTCUSDT"], datetime)


def test_corrupt_stored_state_is_an_error_not_an_empty_state() -> None:
    with pytest.raises(ValueError):
        load_state(["not", "a", "state"])


def test_operator_can_clear_a_breaker_and_status_lists_active_ones() -> None:
    state, _ = trip_funding(GuardState())
    assert describe(state, NOW) == ["funding-rate breaker on BTCUSDT until 12:10 UTC"]
    state, events = clear_breaker(state, "funding:BTCUSDT")
    assert [e.kind for e in events] == [GuardEventKind.CLEARED]
    assert allow_entry(state, SYMBOL, NOW)[0]
    assert clear_breaker(state, "funding:BTCUSDT") == (state, [])


# --- expire: nothing to do on most ticks -------------------------------------------------
MOMENTS = st.integers(-3, 3).map(lambda minutes: NOW + timedelta(minutes=minutes))


@st.composite
def guard_states(draw: st.DrawFn) -> GuardState:
    """States with breakers, cooldowns, pauses and an emergency cooldown ending around NOW."""
    names = st.sampled_from(["spread:BTCUSDT", "crash:ETHUSDT", "api", "regime:BTCUSDT"])
    symbols = st.sampled_from(["BTCUSDT", "ETHUSDT", "XRPUSDT"])
    paused_until = draw(st.none() | MOMENTS)
    return GuardState(
        breakers=draw(st.dictionaries(names, MOMENTS, max_size=3)),
        cooldowns=draw(st.dictionaries(symbols, MOMENTS, max_size=2)),
        paused=draw(st.booleans()), paused_until=paused_until,
        paused_symbols=draw(st.dictionaries(symbols, st.none() | MOMENTS, max_size=2)),
        entries_blocked_until=draw(st.none() | MOMENTS))


@settings(max_examples=300, deadline=None)
@given(guard_states())
def test_expire_drops_exactly_what_ended_and_leaves_the_state_alone_otherwise(
        state: GuardState) -> None:
    """The early return (nothing ended: the same state, no events) is taken exactly when
    nothing has an end at or before now; otherwise only what ended goes."""
    expired, events = expire(state, NOW)
    ended = ({n for n, until in state.breakers.items() if until <= NOW}
             | {s for s, until in state.cooldowns.items() if until <= NOW}
             | {s for s, until in state.paused_symbols.items() if until is not None and until <= NOW})
    pause_ended = state.paused and state.paused_until is not None and state.paused_until <= NOW
    emergency_ended = state.entries_blocked_until is not None and state.entries_blocked_until <= NOW
    if not (ended or pause_ended or emergency_ended):
        assert expired is state and events == []
        return
    assert expired.breakers == {n: u for n, u in state.breakers.items() if u > NOW}
    assert expired.cooldowns == {s: u for s, u in state.cooldowns.items() if u > NOW}
    assert expired.paused_symbols == {s: u for s, u in state.paused_symbols.items()
                                      if u is None or u > NOW}
    assert expired.paused == (state.paused and not pause_ended)
    assert expired.entries_blocked_until == (None if emergency_ended
                                             else state.entries_blocked_until)
    cleared = {(e.name, e.symbol) for e in events}
    assert {n for n, _ in cleared if n not in ("pause", "emergency_cooldown")} == \
        {n for n in state.breakers if state.breakers[n] <= NOW}
    assert expire(expired, NOW) == (expired, [])


@settings(max_examples=200, deadline=None)
@given(guard_states(), MOMENTS)
def test_a_breaker_refuses_entries_only_while_it_lasts_on_the_symbol_or_the_account(
        any_state: GuardState, now: datetime) -> None:
    state = GuardState(breakers=any_state.breakers, cooldowns=any_state.cooldowns)
    allowed, reason = allow_entry(state, SYMBOL, now)
    blocking = sorted(name for name, until in state.breakers.items()
                      if until > now and name.partition(":")[2] in ("", SYMBOL))
    if blocking:
        assert not allowed and reason.startswith(breaker_label(blocking[0]))
    else:
        assert (allowed, reason) == allow_entry(GuardState(cooldowns=state.cooldowns), SYMBOL, now)
