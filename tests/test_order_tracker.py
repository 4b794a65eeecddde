"""The order tracker's live orders kept as each order is kept (trader/order_tracker.py) are
what scanning every known order of the symbol gives, in the same order, whatever mix of
stream reports, missing-order answers, snapshots, symbol changes and forgetting; and a read
after a change does not walk the finished orders of the last hours."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Order, OrderStatus, OrderType, Side
from trader.order_tracker import FORGET_AFTER, OrderTracker, TrackedOrder

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def order(symbol: str, client_id: str, status: OrderStatus) -> Order:
    return Order(symbol, client_id, Side.SELL, OrderType.STOP_MARKET, status, Decimal("0.01"),
                 trigger_price=Decimal("100"))


def scanned(tracker: OrderTracker, symbol: str) -> list[Order]:
    """`live(symbol)` as it was computed before: every known order of the symbol, scanned."""
    return [tracked.order for tracked in tracker.for_symbol(symbol).values() if tracked.live]


ids = st.sampled_from([f"tb-BTCUSDT-k-SL{n}" for n in range(6)] + ["manual-1", "manual-2"])
steps = st.one_of(
    st.tuples(st.just("order"), st.sampled_from(SYMBOLS), ids, st.sampled_from(list(OrderStatus))),
    st.tuples(st.just("missing"), ids),
    st.tuples(st.just("snapshot"), st.sampled_from(SYMBOLS), st.lists(ids, max_size=3)),
    st.tuples(st.just("forget")),
    st.tuples(st.just("later"), st.integers(1, 400)),
)


def played(tracker: OrderTracker, step: tuple, now: datetime) -> datetime:
    """One `steps` step applied to `tracker` at `now`; the time after it. A "forget" step
    checks that exactly the finished orders older than FORGET_AFTER are forgotten."""
    kind = step[0]
    if kind == "order":
        tracker.on_order(order(step[1], step[2], step[3]), now)
    elif kind == "missing":
        tracker.on_missing(step[1], now)
    elif kind == "snapshot":
        listed = [tracker.get(cid).order if tracker.get(cid) else
                  order(step[1], cid, OrderStatus.NEW) for cid in step[2]]
        tracker.on_snapshot(step[1], [o for o in listed if o.symbol == step[1]], now)
    elif kind == "forget":
        due = [cid for symbol in SYMBOLS for cid, tracked in tracker.for_symbol(symbol).items()
               if not tracked.live and now - tracked.learned_at > FORGET_AFTER]
        assert tracker.forget_finished(now) == len(due)
        assert not any(tracker.get(cid) for cid in due)
    else:
        now += timedelta(minutes=step[1])
    return now


def live_asked(monkeypatch: pytest.MonkeyPatch) -> list[TrackedOrder]:
    """Every TrackedOrder whose `live` is asked from now on, in order."""
    asked: list[TrackedOrder] = []
    plain = TrackedOrder.live

    def counted(tracked: TrackedOrder) -> bool:
        asked.append(tracked)
        return plain.fget(tracked)             # type: ignore[attr-defined]

    monkeypatch.setattr(TrackedOrder, "live", property(counted))
    return asked


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=60), st.lists(st.booleans(), min_size=60, max_size=60))
def test_live_orders_kept_as_they_change_are_the_scan_of_every_order(
        script: list[tuple], reads: list[bool]) -> None:
    tracker, now = OrderTracker(), T0
    for step, read in zip(script, reads, strict=False):
        now = played(tracker, step, now)
        if read:
            for symbol in SYMBOLS:
                assert tracker.live(symbol) == scanned(tracker, symbol)
                assert tracker.has_live(symbol) == bool(scanned(tracker, symbol))
    for symbol in SYMBOLS:
        assert tracker.live(symbol) == scanned(tracker, symbol)


def test_a_read_after_a_change_does_not_walk_the_finished_orders(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tracker = OrderTracker()
    for n in range(300):                       # the last hours' finished orders
        tracker.on_order(order("BTCUSDT", f"tb-BTCUSDT-k{n}-SL1", OrderStatus.CANCELED), T0)
    tracker.on_order(order("BTCUSDT", "tb-BTCUSDT-live-SL1", OrderStatus.NEW), T0)
    assert len(tracker.live("BTCUSDT")) == 1
    asked = live_asked(monkeypatch)
    tracker.on_order(order("BTCUSDT", "tb-BTCUSDT-live-TP1", OrderStatus.NEW), T0)
    assert [o.client_id for o in tracker.live("BTCUSDT")] == ["tb-BTCUSDT-live-SL1",
                                                               "tb-BTCUSDT-live-TP1"]
    assert len(asked) <= 2
    assert tracker.forget_finished(T0 + FORGET_AFTER + timedelta(seconds=1)) == 300


def test_forgetting_walks_the_orders_only_once_one_is_due(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Housekeeping asks every few minutes; the last hours' finished orders are walked only
    once the oldest of them is FORGET_AFTER old, and each is forgotten then."""
    tracker = OrderTracker()
    for n in range(300):
        tracker.on_order(order("BTCUSDT", f"tb-BTCUSDT-k{n}-SL1", OrderStatus.CANCELED),
                         T0 + timedelta(minutes=n))
    asked = live_asked(monkeypatch)
    for minutes in range(0, 360, 5):
        assert tracker.forget_finished(T0 + timedelta(minutes=minutes)) == 0
    assert asked == []
    assert tracker.forget_finished(T0 + FORGET_AFTER + timedelta(minutes=10, seconds=1)) == 11
    assert tracker.get("tb-BTCUSDT-k10-SL1") is None
    assert tracker.get("tb-BTCUSDT-k11-SL1") is not None
    asked.clear()
    assert tracker.forget_finished(T0 + FORGET_AFTER + timedelta(minutes=10, seconds=30)) == 0
    assert asked == []


def test_a_quiet_symbols_orders_are_handed_out_without_a_copy_each_tick() -> None:
    """The tick's view asks `for_symbol` every tick; the finished orders of the last 6 h are
    in it. Nothing changed since the last tick: the same read-only snapshot, not a copy."""
    tracker = OrderTracker()
    for n in range(20):
        tracker.on_order(order("BTCUSDT", f"tb-BTCUSDT-k{n}-sl1", OrderStatus.CANCELED), T0)
    tracker.on_order(order("BTCUSDT", "tb-BTCUSDT-k20-sl1", OrderStatus.NEW), T0)
    first = tracker.for_symbol("BTCUSDT")
    assert tracker.for_symbol("BTCUSDT") is first
    with pytest.raises(TypeError):
        first["manual-1"] = first["tb-BTCUSDT-k20-sl1"]     # type: ignore[index]


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=60), st.lists(st.booleans(), min_size=60, max_size=60))
def test_a_view_handed_out_keeps_what_it_said_while_the_tracker_moves_on(
        script: list[tuple], reads: list[bool]) -> None:
    """Each view is the symbol's orders at the moment it was asked (a tick reads it after
    its own placements changed the tracker), and a fresh one is what the tracker knows."""
    tracker, now = OrderTracker(), T0
    views: list[tuple[dict, dict]] = []    # (the view, a copy of it when handed out)
    for step, read in zip(script, reads, strict=False):
        now = played(tracker, step, now)
        if read:
            for symbol in SYMBOLS:
                view = tracker.for_symbol(symbol)
                known = {cid: tracker.get(cid) for cid in view}
                assert dict(view) == known
                assert all(tracked.order.symbol == symbol for tracked in view.values())
                views.append((view, dict(view)))
        assert all(dict(view) == then for view, then in views)
