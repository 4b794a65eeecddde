"""The invariant checks (trader/invariant_checks.py) at their edges, and the episodes that
tell a lasting violation from a transient one (trader/invariant_monitor.py): a stop being
replaced new-first (two stops for a tick), an entry just filled (no legs yet), a flapping
violation: none of them may be confirmed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from tests.positions import make
from trader.domain import (
    ExchangePosition,
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.invariant_checks import (
    InvariantKind,
    Violation,
    WaitingAlert,
    duplicate_client_ids,
    flat_symbol_violations,
    position_mismatch,
    silent_streams,
    stop_loss_violations,
    stuck_intents,
    take_profit_violations,
    undelivered_alerts,
    unjournaled_fills,
)
from trader.invariant_monitor import Episodes
from trader.position import PositionState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BTC = "BTCUSDT"
LONG = ExchangePosition(BTC, D("0.1"))
SHORT = ExchangePosition(BTC, D("-0.1"))
FLAT = ExchangePosition(BTC, D(0))


def order(kind: OrderType, side: Side = Side.SELL, qty: str = "0.1", cid: str = "tb-BTCUSDT-k1-sl1",
          *, status: OrderStatus = OrderStatus.NEW, close_position: bool = False,
          filled: str = "0", symbol: str = BTC, trigger: str | None = "49500") -> Order:
    return Order(symbol, cid, side, kind, status, D(qty), filled_qty=D(filled),
                 trigger_price=D(trigger) if trigger else None, reduce_only=not close_position,
                 close_position=close_position)


def stop(cid: str = "tb-BTCUSDT-k1-sl1", **kwargs) -> Order:
    return order(OrderType.STOP_MARKET, cid=cid, **kwargs)


def target(cid: str = "tb-BTCUSDT-k1-tp1", **kwargs) -> Order:
    return order(OrderType.TAKE_PROFIT_MARKET, cid=cid, **{"trigger": "51000", **kwargs})


def kinds(found: list[Violation]) -> list[InvariantKind]:
    return [v.kind for v in found]


# --- stop-loss ----------------------------------------------------------------------------
@pytest.mark.parametrize("live", [
    [stop()],
    [stop(close_position=True, qty="0")],
    [stop(qty="0.2")],                                   # more than the size still covers it
    [stop(cid="web_hand_1")],                            # placed by hand: adopted as the leg
    [stop(qty="0.2", filled="0.1")],                     # partly filled, the rest covers it
    [stop(), stop(cid="tb-BTCUSDT-k1-sl0", status=OrderStatus.CANCELED)],   # finished: ignored
    [stop(), stop(cid="tb-ETHUSDT-k1-sl1", symbol="ETHUSDT")],              # another symbol
    [stop(), order(OrderType.STOP_MARKET, Side.BUY, cid="web_2")],   # would add, not close
])
def test_one_live_stop_covering_the_position_is_no_violation(live) -> None:
    assert stop_loss_violations(LONG, live) == []


def test_no_stop_names_the_position_and_what_is_live() -> None:
    [none] = stop_loss_violations(LONG, [target()])
    assert none.kind is InvariantKind.NO_STOP and none.symbol == BTC
    assert "LONG 0.1 open without a stop-loss" in none.text
    [short] = stop_loss_violations(SHORT, [stop()])       # a SELL stop does not close a short
    assert short.kind is InvariantKind.NO_STOP and "SHORT 0.1" in short.text


def test_a_stop_smaller_than_the_position_does_not_cover_it() -> None:
    [found] = stop_loss_violations(LONG, [stop(qty="0.09")])
    assert found.kind is InvariantKind.NO_STOP
    assert "tb-BTCUSDT-k1-sl1 (0.09 at 49500)" in found.text and found.client_ids == (
        "tb-BTCUSDT-k1-sl1",)


def test_two_stops_are_an_extra_stop_with_both_as_evidence() -> None:
    live = [stop(close_position=True, qty="0"), stop(cid="web_hand_1", trigger="49000")]
    [found] = stop_loss_violations(LONG, live)
    assert found.kind is InvariantKind.EXTRA_STOP
    assert found.client_ids == ("tb-BTCUSDT-k1-sl1", "web_hand_1")
    assert ("2 live stop-losses: tb-BTCUSDT-k1-sl1 (closePosition at 49500), web_hand_1 "
            "(0.1 at 49000)") in found.text


def test_a_stop_replaced_new_first_is_two_stops_at_that_moment() -> None:
    """The check reports the moment; the episodes (below) keep it from being alerted."""
    old, new = stop(qty="0.1"), stop(cid="tb-BTCUSDT-k1-sl2", qty="0.15")
    grown = ExchangePosition(BTC, D("0.15"))
    assert kinds(stop_loss_violations(grown, [old, new])) == [InvariantKind.EXTRA_STOP]
    assert kinds(stop_loss_violations(grown, [old])) == [InvariantKind.NO_STOP]


def test_a_flat_symbol_needs_no_stop() -> None:
    assert stop_loss_violations(FLAT, []) == []
    assert take_profit_violations(FLAT, []) == []


# --- take-profit --------------------------------------------------------------------------
@pytest.mark.parametrize("live", [
    [target()],
    [target(close_position=True, qty="0")],
    [target(qty="0.04"), target(cid="tb-BTCUSDT-k1-tp2", qty="0.06")],      # TP1 + TP2
    [order(OrderType.LIMIT, cid="tb-BTCUSDT-k1-tp1", trigger=None)],        # a resting limit
])
def test_take_profits_closing_exactly_the_size_are_no_violation(live) -> None:
    assert take_profit_violations(LONG, live) == []


@pytest.mark.parametrize(("live", "covered"), [
    ([], "0"),
    ([target(qty="0.05")], "0.05"),
    ([target(), target(cid="tb-BTCUSDT-k1-tp2")], "0.2"),
    ([order(OrderType.LIMIT, cid="web_limit", trigger=None)], "0"),   # anybody's limit: no TP
])
def test_take_profits_not_closing_the_size_are_a_violation(live, covered) -> None:
    [found] = take_profit_violations(LONG, live)
    assert found.kind is InvariantKind.TAKE_PROFIT
    assert f"take-profits close {covered} " in found.text


# --- flat symbols -------------------------------------------------------------------------
def test_an_order_of_ours_on_a_flat_symbol_is_a_leftover_with_its_id() -> None:
    for held in (FLAT, None):
        [found] = flat_symbol_violations(BTC, held, [target(), stop(cid="web_hand_1")])
        assert found.kind is InvariantKind.FLAT_ORDERS and found.client_ids == (
            "tb-BTCUSDT-k1-tp1",)
        assert "tb-BTCUSDT-k1-tp1 (TAKE_PROFIT_MARKET SELL 0.1)" in found.text


def test_orders_on_an_open_symbol_or_an_entry_being_entered_are_no_leftovers() -> None:
    assert flat_symbol_violations(BTC, LONG, [target()]) == []
    entry = order(OrderType.LIMIT, Side.BUY, cid="tb-BTCUSDT-k2-en1", trigger=None)
    assert flat_symbol_violations(BTC, FLAT, [entry], allowed={"tb-BTCUSDT-k2-en1"}) == []
    assert flat_symbol_violations(BTC, FLAT, [stop(status=OrderStatus.FILLED)]) == []


# --- duplicates, fills ---------------------------------------------------------------------
def test_one_client_id_on_two_exchange_orders_was_accepted_twice() -> None:
    [found] = duplicate_client_ids([("tb-BTCUSDT-k1-en1", "11"), ("tb-BTCUSDT-k1-en1", "11"),
                                    ("tb-BTCUSDT-k1-en1", "12")])
    assert found.kind is InvariantKind.DUPLICATE_ID and found.symbol == BTC
    assert "client id tb-BTCUSDT-k1-en1 accepted 2 times (orders 11, 12)" in found.text


def test_partial_fills_of_one_order_and_anybody_elses_ids_are_no_duplicates() -> None:
    assert duplicate_client_ids([("tb-BTCUSDT-k1-en1", "11")] * 3) == []
    assert duplicate_client_ids([("manual-1", "1"), ("manual-1", "2")]) == []
    assert duplicate_client_ids([("tb-BTCUSDT-k1-en1", ""), ("tb-BTCUSDT-k1-en1", "11")]) == []


def fill(trade_id: str, at: datetime, cid: str = "tb-BTCUSDT-k1-en1") -> Fill:
    return Fill(trade_id, BTC, cid, Side.BUY, D("0.1"), D("50000"), D("2.5"), D(0), at)


def test_an_exchange_fill_missing_from_the_journal_is_named() -> None:
    fills = [fill("1", NOW - timedelta(minutes=5)), fill("2", NOW - timedelta(minutes=4))]
    [found] = unjournaled_fills(fills, {"1"}, settled_before=NOW)
    assert found.kind is InvariantKind.UNJOURNALED_FILL and found.client_ids == (
        "tb-BTCUSDT-k1-en1",)
    assert "trade 2 (tb-BTCUSDT-k1-en1 BUY 0.1 at 11:56:00)" in found.text
    assert unjournaled_fills(fills, {"1", "2"}, settled_before=NOW) == []


def test_a_fill_younger_than_the_journal_lag_is_not_expected_yet() -> None:
    fresh = fill("3", NOW)
    assert unjournaled_fills([fresh], set(), settled_before=NOW) == []
    assert unjournaled_fills([fresh], set(), settled_before=NOW + timedelta(microseconds=1))


# --- intents, alerts, positions, streams ----------------------------------------------------
def intent(status: IntentStatus, sent: datetime) -> Intent:
    return Intent("tb-BTCUSDT-k1-sl2", BTC, OrderRole.STOP_LOSS, Side.SELL,
                  OrderType.STOP_MARKET, D("0.1"), "k1", sent - timedelta(seconds=1),
                  status=status, trigger_price=D("49500"), sent_at=sent)


def test_an_intent_sent_longer_than_the_window_ago_is_stuck() -> None:
    window = timedelta(seconds=75)
    assert stuck_intents([intent(IntentStatus.SENT, NOW - window)], NOW, window) == []
    [found] = stuck_intents([intent(IntentStatus.SENT, NOW - window - timedelta(seconds=1))],
                            NOW, window)
    assert found.kind is InvariantKind.STUCK_INTENT and found.client_ids == (
        "tb-BTCUSDT-k1-sl2",)
    assert "tb-BTCUSDT-k1-sl2 (STOP_MARKET SELL 0.1, sent 11:58:44)" in found.text
    for settled in (IntentStatus.ACKED, IntentStatus.PENDING, IntentStatus.FILLED):
        assert stuck_intents([intent(settled, NOW - timedelta(hours=1))], NOW, window) == []


def test_alerts_waiting_since_before_the_bound_are_a_backlog() -> None:
    bound = NOW - timedelta(minutes=5)
    assert undelivered_alerts([WaitingAlert(7, "FILL", bound)], bound) == []
    [found] = undelivered_alerts([WaitingAlert(7, "FILL", bound - timedelta(seconds=1)),
                                  WaitingAlert(8, "CLOSE", NOW)], bound)
    assert found.kind is InvariantKind.ALERT_BACKLOG and found.symbol == ""
    assert "1 alerts undelivered, the oldest FILL (id 7)" in found.text


@pytest.mark.parametrize(("record", "held", "broken"), [
    (None, FLAT, False),
    (make(state=PositionState.PROTECTED), LONG, False),
    (make(state=PositionState.CLOSED), FLAT, False),
    (make(state=PositionState.ENTERING, quantity="0"), LONG, False),   # its entry filling now
    (None, LONG, True),
    (make(state=PositionState.PROTECTED), FLAT, True),
    (make(state=PositionState.ATTACHING, quantity="0.05"), LONG, True),
    (make(state=PositionState.PROTECTED), SHORT, True),
    (make(state=PositionState.CLOSED), LONG, True),
])
def test_the_database_position_is_the_exchange_position(record, held, broken) -> None:
    found = position_mismatch(BTC, record, held)
    assert bool(found) is broken
    if broken:
        assert found[0].kind is InvariantKind.POSITION_MISMATCH
        assert found[0].text.startswith("database ") and ", exchange " in found[0].text


def test_a_stream_down_is_silent_but_one_switched_off_is_not() -> None:
    assert silent_streams({"user_data": "up", "market": "up"}) == []
    assert silent_streams({"user_data": "polling"}) == []
    [found] = silent_streams({"user_data": "up", "market": "down", "book_ticker": "down"})
    assert found.kind is InvariantKind.STREAM_SILENT
    assert found.text.startswith("book_ticker, market stream down")


# --- episodes: what lasts is confirmed, transients are not ----------------------------------
EXTRA = Violation(InvariantKind.EXTRA_STOP, BTC, "2 live stop-losses")


def test_a_violation_seen_by_one_check_only_is_never_confirmed() -> None:
    """A stop replaced new-first, an entry whose legs are being placed: gone by the next."""
    episodes = Episodes()
    assert episodes.update([EXTRA], NOW) == [] and episodes.confirmed() == []
    assert episodes.update([], NOW + timedelta(minutes=1)) == []
    assert episodes.confirmed() == []


def test_a_violation_flapping_between_checks_is_never_confirmed() -> None:
    episodes = Episodes()
    for minute in range(6):
        episodes.update([EXTRA] if minute % 2 == 0 else [], NOW + timedelta(minutes=minute))
        assert episodes.confirmed() == []


def test_a_violation_two_checks_in_a_row_see_is_confirmed_until_a_check_does_not() -> None:
    episodes = Episodes()
    episodes.update([EXTRA], NOW)
    episodes.update([EXTRA], NOW + timedelta(minutes=1))
    [confirmed] = episodes.confirmed()
    assert confirmed.since == NOW and confirmed.checks == 2
    episodes.update([EXTRA], NOW + timedelta(minutes=2))
    [ended] = episodes.update([], NOW + timedelta(minutes=3))
    assert ended.violation == EXTRA and ended.checks == 3 and episodes.confirmed() == []


def test_findings_of_one_kind_on_one_symbol_are_one_episode() -> None:
    episodes = Episodes()
    first = Violation(InvariantKind.DUPLICATE_ID, BTC, "a", ("x",))
    second = Violation(InvariantKind.DUPLICATE_ID, BTC, "b", ("y",))
    other = Violation(InvariantKind.DUPLICATE_ID, "ETHUSDT", "c")
    for minute in range(2):
        episodes.update([first, second, other], NOW + timedelta(minutes=minute))
    merged = {e.violation.symbol: e.violation for e in episodes.confirmed()}
    assert merged[BTC].text == "a; b" and merged[BTC].client_ids == ("x", "y")
    assert set(merged) == {BTC, "ETHUSDT"}
