"""The funding payments a store keeps in memory (trader/trade_store.py `funding_payments`
with a `since`): what the database's "ORDER BY at, id" query reads, kept with each
`record_funding`, read again after a restart or for an earlier time."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.storage_support import NOW
from trader.trade_store import FundingPayment, TradeStore


def _from_the_database(store: TradeStore, since) -> list[FundingPayment]:
    return [payment for _, payment in store._read_funding(since.isoformat())]


def test_kept_payments_are_what_the_database_lists(tmp_path: Path) -> None:
    """Recorded after the first read, out of time order and with ties: the memory lists
    them as the query does (negative test of the upkeep: fails if a record is not kept)."""
    store = TradeStore.open(tmp_path / "t.db")
    store.record_funding(FundingPayment(NOW, "BTCUSDT", Decimal("-0.10")))
    assert store.funding_payments(NOW - timedelta(hours=1)) == _from_the_database(
        store, NOW - timedelta(hours=1))
    for minutes, symbol, amount in [(60, "BTCUSDT", "-0.20"), (30, "ETHUSDT", "0.05"),
                                    (60, "ETHUSDT", "0.300"), (-90, "BTCUSDT", "1"),
                                    (0, "", "-0.01")]:
        store.record_funding(FundingPayment(NOW + timedelta(minutes=minutes), symbol,
                                            Decimal(amount)))
    for since in (NOW - timedelta(hours=1), NOW, NOW + timedelta(minutes=45),
                  NOW + timedelta(hours=2), NOW - timedelta(hours=3)):
        assert store.funding_payments(since) == _from_the_database(store, since)
    assert [p.amount for p in store.funding_payments(NOW)] == [
        Decimal("-0.10"), Decimal("-0.01"), Decimal("0.05"), Decimal("-0.20"),
        Decimal("0.300")]
    assert store._funding is not None       # answered from memory, not a query each time
    store.close()


def test_a_payment_recorded_before_a_restart_is_in_the_close_figure(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    assert store.funding_payments(NOW) == []            # kept: none yet
    store.record_funding(FundingPayment(NOW + timedelta(hours=1), "BTCUSDT", Decimal("-0.25")))
    store.close()
    again = TradeStore.open(tmp_path / "t.db")
    assert again.funding_payments(NOW) == [
        FundingPayment(NOW + timedelta(hours=1), "BTCUSDT", Decimal("-0.25"))]
    again.record_funding(FundingPayment(NOW + timedelta(hours=9), "BTCUSDT", Decimal("0.5")))
    assert [p.amount for p in again.funding_payments(NOW)] == [Decimal("-0.25"),
                                                                Decimal("0.5")]
    again.close()


def test_a_payment_of_a_rolled_back_batch_is_forgotten(tmp_path: Path) -> None:
    """A batch that fails takes its funding row back: the memory is forgotten with it and
    read again (fails if the memory outlives the rollback)."""
    store = TradeStore.open(tmp_path / "t.db")
    assert store.funding_payments(NOW) == []
    with pytest.raises(RuntimeError), store.batch("candle"):
        store.record_funding(FundingPayment(NOW, "BTCUSDT", Decimal("-0.25")))
        assert len(store.funding_payments(NOW)) == 1
        raise RuntimeError("the candle failed")
    assert store.funding_payments(NOW) == _from_the_database(store, NOW) == []
    store.close()


def test_the_payments_since_a_time_among_many_kept(tmp_path: Path) -> None:
    """The kept payments at or after a time are found by bisection: for a time before all
    of them, equal to one (ties included), between two and after all, the same list as the
    database's query (fails if the tail starts one payment early or late)."""
    store = TradeStore.open(tmp_path / "t.db")
    assert store.funding_payments(NOW - timedelta(days=1)) == []
    times = [NOW + timedelta(hours=8 * n) for n in range(40)] + [NOW + timedelta(hours=80)]
    for n, at in enumerate(times):
        store.record_funding(FundingPayment(at, "BTCUSDT", Decimal(n) / 100))
    asked = [NOW - timedelta(hours=1), *times, *(at + timedelta(minutes=1) for at in times),
             NOW + timedelta(days=30)]
    for since in asked:
        assert store.funding_payments(since) == _from_the_database(store, since), since
    assert len(store.funding_payments(NOW + timedelta(hours=80))) == 31     # the tie: both
    assert store._funding is not None
    store.close()
