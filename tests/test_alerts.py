"""Alerts: the severity table and its all-clears, the Alerter (throttled repeats, the outbox
keeps order, a database outage loses nothing, trip/clear pairs merged, alerts turned off or
answered in a reply kept but not sent) and the loudness rule."""

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from storage import Store
from trader.alert_routing import MERGE_WINDOW, AlertRouting, Loudness
from trader.alerter import Alerter
from trader.alerts import (
    ALL_CLEAR,
    DEFAULT_SEVERITY,
    MERGED_PAIRS,
    ONE_SHOT,
    Alert,
    AlertName,
    OutgoingAlert,
    Severity,
)
from trader.clock import ManualClock

REPO = Path(__file__).resolve().parent.parent

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
THROTTLE = timedelta(minutes=5)


class RecordingSink:
    """An AlertSink that only counts how often it was woken."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def alerter(store: Store, sink: RecordingSink) -> Alerter:
    alerter = Alerter(store, throttle=THROTTLE)
    alerter.sink = sink
    return alerter


def sl_missing(symbol: str = "BTCUSDT") -> Alert:
    return Alert(AlertName.SL_MISSING, f"{symbol} has no stop-loss", symbol=symbol)


def test_repeat_of_the_same_key_is_throttled_within_the_window(
        alerter: Alerter, store: Store, sink: RecordingSink) -> None:
    assert alerter.publish(sl_missing(), NOW) is True
    assert alerter.publish(sl_missing(), NOW + THROTTLE - timedelta(seconds=1)) is False
    assert [a.name for a in store.pending_alerts()] == ["SL_MISSING"]
    assert sink.wakes == 1


def test_repeat_after_the_window_goes_out_again(alerter: Alerter, store: Store) -> None:
    assert alerter.publish(sl_missing(), NOW) is True
    assert alerter.publish(sl_missing(), NOW + THROTTLE) is True
    assert len(store.pending_alerts()) == 2


def test_throttle_window_starts_at_the_last_alert_sent_not_the_last_attempt(
        alerter: Alerter) -> None:
    assert alerter.publish(sl_missing(), NOW) is True
    assert alerter.publish(sl_missing(), NOW + timedelta(minutes=4)) is False
    assert alerter.publish(sl_missing(), NOW + timedelta(minutes=5)) is True


def test_a_warning_that_keeps_coming_back_waits_twice_as_long_each_time(
        alerter: Alerter, store: Store) -> None:
    """An error on every 5-minute tick: sent at 0, 5, 15, 35, 75 min ..., each one saying how
    many were dropped since the last."""
    error = Alert(AlertName.ERROR, "tick BTCUSDT: unexpected error TypeError", "BTCUSDT")
    sent = [minute for minute in range(0, 80, 5)
            if alerter.publish(error, NOW + timedelta(minutes=minute))]
    assert sent == [0, 5, 15, 35, 75]
    texts = [a.text for a in store.pending_alerts()]
    assert texts[1] == error.text
    assert texts[2].endswith("(1 more like it since 12:05 UTC)")
    assert texts[4].endswith("(7 more like it since 12:35 UTC)")


def test_the_wait_starts_over_once_a_warning_has_gone_quiet(alerter: Alerter) -> None:
    error = Alert(AlertName.ERROR, "boom", "BTCUSDT")
    for minute in (0, 5, 15):
        assert alerter.publish(error, NOW + timedelta(minutes=minute))
    assert alerter.publish(error, NOW + timedelta(minutes=15 + 40))      # quiet for 2 windows
    assert alerter.publish(error, NOW + timedelta(minutes=15 + 40 + 5))  # back to 5 min


def test_a_critical_repeat_waits_only_the_fixed_throttle(alerter: Alerter) -> None:
    sent = [minute for minute in range(0, 30, 5)
            if alerter.publish(sl_missing(), NOW + timedelta(minutes=minute))]
    assert sent == [0, 5, 10, 15, 20, 25]


def test_different_keys_are_not_throttled(alerter: Alerter, store: Store) -> None:
    assert alerter.publish(sl_missing("BTCUSDT"), NOW) is True
    assert alerter.publish(sl_missing("ETHUSDT"), NOW) is True
    assert alerter.publish(Alert(AlertName.STALE_DATA, "no candles", symbol="BTCUSDT"), NOW)
    custom = Alert(AlertName.STALE_DATA, "no candles", symbol="BTCUSDT", dedup_key="stale:feed")
    assert alerter.publish(custom, NOW) is True
    assert [(a.name, a.dedup_key) for a in store.pending_alerts()] == [
        ("SL_MISSING", "SL_MISSING:BTCUSDT"), ("SL_MISSING", "SL_MISSING:ETHUSDT"),
        ("STALE_DATA", "STALE_DATA:BTCUSDT"), ("STALE_DATA", "stale:feed")]


def test_alerts_land_in_the_outbox_in_publish_order_with_severity(
        alerter: Alerter, sink: RecordingSink) -> None:
    alerter.publish(Alert(AlertName.FILL, "entry filled", symbol="BTCUSDT"), NOW)
    alerter.publish(sl_missing(), NOW + timedelta(seconds=1))
    alerter.publish(Alert(AlertName.CLOSE, "closed", symbol="BTCUSDT",
                          severity=Severity.WARN), NOW + timedelta(seconds=2))
    pending = alerter.pending()
    assert [(a.name, a.severity) for a in pending] == [
        ("FILL", "INFO"), ("SL_MISSING", "CRITICAL"), ("CLOSE", "WARN")]
    assert [a.created_at for a in pending] == [NOW + timedelta(seconds=n) for n in range(3)]
    assert all(a.outbox_id is not None for a in pending)
    assert sink.wakes == 3


def test_outbox_survives_a_restart(db_path: Path) -> None:
    first = Store.open(db_path)
    Alerter(first).publish(sl_missing(), NOW)
    first.close()
    second = Store.open(db_path)
    assert [a.text for a in Alerter(second).pending()] == ["BTCUSDT has no stop-loss"]
    second.close()


def test_database_outage_keeps_alerts_in_memory_and_still_wakes_the_sink(
        db_path: Path, sink: RecordingSink) -> None:
    Store.open(db_path).close()
    read_only = Store(Database(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)))
    alerter = Alerter(read_only, throttle=THROTTLE)
    alerter.sink = sink
    save_failure = Alert(AlertName.SAVE_STATE_FAILURE, "could not save intent")
    assert alerter.publish(save_failure, NOW) is True
    assert alerter.publish(sl_missing(), NOW + timedelta(seconds=1)) is True
    assert sink.wakes == 2
    assert read_only.pending_alerts() == []
    unsaved = alerter.take_unsaved()
    assert [(a.outbox_id, a.name, a.severity, a.created_at) for a in unsaved] == [
        (None, "SAVE_STATE_FAILURE", "CRITICAL", NOW),
        (None, "SL_MISSING", "CRITICAL", NOW + timedelta(seconds=1))]
    assert alerter.take_unsaved() == []
    read_only.close()


def test_publishing_without_a_sink_still_records_the_alert(store: Store) -> None:
    assert Alerter(store).publish(sl_missing(), NOW) is True
    assert len(store.pending_alerts()) == 1


# --- the severity table ---------------------------------------------------------------------
SOURCES = [path for folder in ("trader", "bot") for path in (REPO / folder).rglob("*.py")
           if path.name != "alerts.py"]


def published_names() -> set[str]:
    code = "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)
    return set(re.findall(r"AlertName\.([A-Z_]+)", code))


def test_every_alert_name_has_a_severity_and_is_published_somewhere() -> None:
    assert set(DEFAULT_SEVERITY) == set(AlertName)
    assert {name.name for name in AlertName} <= published_names()


def test_each_critical_that_can_resolve_has_an_all_clear_and_the_rest_say_why_not() -> None:
    critical = {name for name, level in DEFAULT_SEVERITY.items() if level is Severity.CRITICAL}
    assert critical <= set(ALL_CLEAR) | set(ONE_SHOT)
    assert not set(ALL_CLEAR) & set(ONE_SHOT)
    assert all(DEFAULT_SEVERITY[name] is Severity.CRITICAL and why for name, why in ONE_SHOT.items())
    for trouble, all_clear in ALL_CLEAR.items():
        assert DEFAULT_SEVERITY[all_clear] is Severity.INFO, all_clear
        assert all_clear.name in published_names(), f"nobody publishes {all_clear} after {trouble}"


def test_what_the_operator_asked_for_and_routine_news_are_info() -> None:
    for name in (AlertName.EMERGENCY_DONE, AlertName.REPLY, AlertName.STARTUP, AlertName.SHUTDOWN,
                 AlertName.FILL, AlertName.CLOSE, AlertName.BREAKER_TRIPPED,
                 AlertName.BREAKER_CLEARED, AlertName.DAILY_SUMMARY):
        assert DEFAULT_SEVERITY[name] is Severity.INFO, name


def test_merged_pairs_never_hold_a_critical() -> None:
    assert all(DEFAULT_SEVERITY[trip] is not Severity.CRITICAL for trip in MERGED_PAIRS)
    routing = AlertRouting()
    assert not routing.holds(Alert(AlertName.BREAKER_TRIPPED, "x", severity=Severity.CRITICAL))


# --- trip / clear pairs ---------------------------------------------------------------------
def trip(at: str = "12:03", symbol: str = "XRPUSDT", kind: str = "spread") -> Alert:
    return Alert(AlertName.BREAKER_TRIPPED, f"{symbol} {kind} 0.120% > 1.2 x median 0.050%; new "
                 f"entries paused until {at}", symbol, dedup_key=f"tripped:{kind}:{symbol}:{at}",
                 subject=f"{kind}:{symbol}")


def clear(symbol: str = "XRPUSDT", kind: str = "spread") -> Alert:
    return Alert(AlertName.BREAKER_CLEARED, f"breaker {kind}:{symbol} cleared; entries allowed "
                 "again", symbol, dedup_key=f"cleared:{kind}:{symbol}", subject=f"{kind}:{symbol}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def merging(store: Store, clock: ManualClock) -> Alerter:
    return Alerter(store, clock)


def statuses(store: Store) -> list[tuple[str, str]]:
    return [(a.name, a.status) for a in store.recent_alerts(50)]


def test_a_trip_cleared_within_the_window_is_one_message(merging: Alerter, store: Store,
                                                        clock: ManualClock) -> None:
    merging.publish(trip(), clock.now())
    assert merging.pending() == []                      # held for its clear
    clock.advance(timedelta(minutes=5))
    merging.publish(clear(), clock.now())
    [message] = merging.pending()
    assert message.name == "BREAKER_CLEARED" and message.severity == "INFO"
    assert message.text == ("spread breaker on XRPUSDT: tripped 12:00, cleared 12:05 UTC\n"
                            "XRPUSDT spread 0.120% > 1.2 x median 0.050%")
    assert statuses(store) == [("BREAKER_TRIPPED", "merged"), ("BREAKER_CLEARED", "pending")]


def test_a_held_trip_does_not_hold_up_other_alerts(merging: Alerter, clock: ManualClock) -> None:
    merging.publish(trip(), clock.now())
    merging.publish(Alert(AlertName.FILL, "LONG filled", "XRPUSDT"), clock.now())
    merging.publish(sl_missing(), clock.now())
    assert [a.name for a in merging.pending()] == ["FILL", "SL_MISSING"]


def test_a_breaker_still_on_after_the_window_is_reported_then_and_its_clear_later(
        merging: Alerter, clock: ManualClock) -> None:
    merging.publish(trip(), clock.now())
    clock.advance(MERGE_WINDOW - timedelta(seconds=1))
    assert merging.pending() == []
    clock.advance(timedelta(seconds=1))
    [tripped] = merging.pending()
    assert tripped.name == "BREAKER_TRIPPED" and "new entries paused" in tripped.text
    clock.advance(timedelta(minutes=10))
    merging.publish(clear(), clock.now())
    assert [a.text for a in merging.pending()][-1] == (
        "breaker spread:XRPUSDT cleared; entries allowed again (tripped 12:00 UTC)")


def test_re_trips_before_the_clear_fold_into_one_message(merging: Alerter, store: Store,
                                                        clock: ManualClock) -> None:
    for minute in (0, 15, 30):
        clock.set(NOW + timedelta(minutes=minute))
        merging.publish(trip(at=f"12:{minute + 10}"), clock.now())
    clock.set(NOW + timedelta(minutes=40))
    merging.publish(clear(), clock.now())
    [message] = merging.pending()
    assert message.text.startswith("spread breaker on XRPUSDT: tripped 12:00, cleared 12:40 UTC")
    assert [s for _, s in statuses(store)] == ["merged", "merged", "merged", "pending"]


def test_two_breakers_on_one_symbol_are_two_episodes(merging: Alerter, clock: ManualClock) -> None:
    merging.publish(trip(kind="spread"), clock.now())
    merging.publish(trip(kind="crash"), clock.now())
    clock.advance(timedelta(minutes=10))
    merging.publish(clear(kind="crash"), clock.now())
    [message] = merging.pending()
    assert message.text.startswith("crash breaker on XRPUSDT: tripped 12:00, cleared 12:10")


def test_stopping_releases_held_trips(merging: Alerter, clock: ManualClock) -> None:
    merging.publish(trip(), clock.now())
    merging.release_held()
    assert [a.name for a in merging.pending()] == ["BREAKER_TRIPPED"]


def test_a_held_trip_survives_a_restart_in_the_outbox(db_path: Path, clock: ManualClock) -> None:
    first = Store.open(db_path)
    Alerter(first, clock).publish(trip(), clock.now())
    first.close()
    second = Store.open(db_path)
    assert [a.name for a in Alerter(second, clock).pending()] == ["BREAKER_TRIPPED"]
    second.close()


# --- off, answered -----------------------------------------------------------------------------
def test_an_alert_turned_off_is_kept_for_the_record_but_not_sent(store: Store,
                                                                 clock: ManualClock) -> None:
    alerter = Alerter(store, clock, AlertRouting(off=frozenset({AlertName.DAILY_SUMMARY})))
    assert alerter.publish(Alert(AlertName.DAILY_SUMMARY, "equity 10,000"), NOW) is False
    assert alerter.pending() == []
    assert statuses(store) == [("DAILY_SUMMARY", "off")]


def test_a_critical_alert_cannot_be_turned_off(store: Store, clock: ManualClock) -> None:
    alerter = Alerter(store, clock, AlertRouting(off=frozenset({AlertName.SL_MISSING})))
    assert alerter.publish(sl_missing(), NOW) is True
    assert [a.name for a in alerter.pending()] == ["SL_MISSING"]


def test_an_alert_answered_in_the_command_reply_is_recorded_not_sent(merging: Alerter,
                                                                    store: Store) -> None:
    merging.publish(Alert(AlertName.EMERGENCY_DONE, "asleep", answered_in_reply=True), NOW)
    assert merging.pending() == []
    assert statuses(store) == [("EMERGENCY_DONE", "answered")]


# --- loudness ---------------------------------------------------------------------------------
def outgoing(name: AlertName, symbol: str = "BTCUSDT") -> OutgoingAlert:
    return OutgoingAlert(1, NOW, name.value, DEFAULT_SEVERITY[name].value, symbol, "text")


def test_info_is_silent_warn_and_critical_ring() -> None:
    loudness = Loudness()
    assert loudness.silent(outgoing(AlertName.FILL)) is True
    assert loudness.silent(outgoing(AlertName.ERROR)) is False
    assert loudness.silent(outgoing(AlertName.SL_MISSING)) is False


def test_the_silent_list_quiets_a_warning_but_never_a_critical() -> None:
    loudness = Loudness(AlertRouting(silent=frozenset({AlertName.ERROR, AlertName.SL_MISSING})))
    assert loudness.silent(outgoing(AlertName.ERROR)) is True
    assert loudness.silent(outgoing(AlertName.SL_MISSING)) is False


@pytest.mark.parametrize("ending", [AlertName.PROTECTION_RESTORED, AlertName.CLOSE])
def test_the_end_of_a_trouble_that_rang_rings_once(ending: AlertName) -> None:
    loudness = Loudness()
    assert loudness.silent(outgoing(AlertName.SL_MISSING)) is False
    assert loudness.silent(outgoing(ending, "ETHUSDT")) is True      # another symbol
    assert loudness.silent(outgoing(ending)) is False
    assert loudness.silent(outgoing(ending)) is True                 # already said


def test_the_end_of_a_silenced_trouble_stays_silent() -> None:
    loudness = Loudness(AlertRouting(silent=frozenset({AlertName.API_CIRCUIT_OPEN})))
    assert loudness.silent(outgoing(AlertName.API_CIRCUIT_OPEN, "")) is True
    assert loudness.silent(outgoing(AlertName.API_CIRCUIT_CLOSED, "")) is True
    loudness = Loudness()
    assert loudness.silent(outgoing(AlertName.API_CIRCUIT_OPEN, "")) is False
    assert loudness.silent(outgoing(AlertName.API_CIRCUIT_CLOSED, "")) is False
