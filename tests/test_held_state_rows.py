"""`Store.put_later` (the guards' state, saved on every trade): inside a replay batch the
last value of a key is written once when the batches are committed, encoded then; every
read of the key-value state sees it first; a delete drops it; outside a batch (the live
agent) it is `put`, committed before it returns."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.storage_support import NOW
from tests.test_store_statements import Statements, commit_the_batches, committed
from trader import operator_holds
from trader.guard_book import STATE_KEY, GuardBook, load_state
from trader.guard_state import GuardConfig
from trader.telemetry import Counters
from trader.trade_store import TradeStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TradeStore]:
    opened = TradeStore.open(tmp_path / "t.db")
    yield opened
    opened.close()


def test_a_key_put_twice_in_batches_is_written_once_as_it_is_last(store: TradeStore) -> None:
    trace = Statements(store)
    encoded: list[int] = []

    def value(n: int):  # type: ignore[no-untyped-def]
        def encode() -> dict[str, int]:
            encoded.append(n)
            return {"n": n}
        return encode
    for n in range(3):
        with store.batch(f"candle {n}"):
            store.put_later("state", value(n), NOW)
    assert committed(store, "SELECT value FROM kv WHERE key = 'state'") == []
    commit_the_batches(store)
    assert trace.words().count("INSERT INTO [kv]") == 1 + 1     # + commit_the_batches' own
    assert committed(store, "SELECT value FROM kv WHERE key = 'state'") == [('{"n": 2}',)]
    assert encoded == [2]


def test_a_held_key_is_read_and_listed_and_deleted_as_if_written(store: TradeStore) -> None:
    with store.batch("candle"):
        store.put_later("state:a", lambda: {"n": 1}, NOW)
        assert store.get("state:a") == {"n": 1}
        store.put_later("state:b", lambda: {"n": 2}, NOW)
        assert store.keys("state:") == ["state:a", "state:b"]
        store.put_later("state:c", lambda: {"n": 3}, NOW)
        store.delete("state:c")
    commit_the_batches(store)
    assert committed(store, "SELECT key FROM kv WHERE key LIKE 'state:%' ORDER BY key") == \
        [("state:a",), ("state:b",)]


def test_outside_a_batch_put_later_is_committed_before_it_returns(store: TradeStore) -> None:
    store.put_later("state", lambda: {"n": 1}, NOW)
    assert committed(store, "SELECT value FROM kv WHERE key = 'state'") == [('{"n": 1}',)]


class Quiet:
    def publish(self, alert, now) -> None:  # type: ignore[no-untyped-def]
        pass


class FixedClock:
    def now(self):  # type: ignore[no-untyped-def]
        return NOW


def test_the_guards_tripped_in_a_backtest_are_saved_once_per_commit(store: TradeStore) -> None:
    """Each trip and cooldown of a replay used to write the guards row; the last state is
    what is saved, and what a restart reads."""
    book = GuardBook(store, Quiet(), FixedClock(), Counters(), GuardConfig())  # type: ignore[arg-type]
    trace = Statements(store)
    for minutes in range(1, 4):
        with store.batch("candle"):
            book.set(operator_holds.pause(book.state, NOW + timedelta(minutes=minutes)))
    commit_the_batches(store)
    assert trace.words().count("INSERT INTO [kv]") == 1 + 1
    [(text,)] = committed(store, f"SELECT value FROM kv WHERE key = '{STATE_KEY}'")
    assert load_state(text).paused_until == NOW + timedelta(minutes=3)
