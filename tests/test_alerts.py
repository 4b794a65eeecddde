"""Alerter: throttled repeats, the outbox keeps order, and a database outage loses nothing."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from storage import Store
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, Severity

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
