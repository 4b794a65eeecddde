"""Alert texts as they read on a phone: what is true now in words (never an invariant's code
name, which reads as the trouble itself: "NO_STOP holds again" reads "no stop again"), prices
and quantities shown as everywhere else (trader/display.py: "49,790", not "49790.0"), times
as "06:10 UTC" (not "2026-11-30 06:10:29.536462+00:00"), and nothing unknown presented as a
known number (a close whose exit was not read says so instead of "PnL +0.00")."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.positions import make, protected
from tests.test_invariant_monitor import invariant_alerts, steps, world_checking
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock
from trader.closing import Finalized
from trader.domain import CloseReason, OrderRole, Side
from trader.events import LegGone, Policy
from trader.guard_book import GuardBook
from trader.guard_state import GuardConfig
from trader.invariant_checks import InvariantKind, Violation, all_clear_text, silent_streams
from trader.lifecycle import step
from trader.market.feed import FeedIssueKind, FeedMonitor
from trader.position import PositionState
from trader.position_journal import PositionJournal
from trader.telemetry import Counters
from trader.trade_history import period_pnl, recent_trades
from trader.trade_store import TradeStore

SINCE = datetime(2026, 11, 30, 6, 9, 58, 123456, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 6, 12, tzinfo=UTC)


# --- INVARIANT_CLEARED ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(InvariantKind))
@pytest.mark.parametrize("position_open", [True, False])
def test_every_all_clear_says_what_is_true_now_in_words(kind: InvariantKind,
                                                        position_open: bool) -> None:
    text = all_clear_text(Violation(kind, SYMBOL, "evidence"), SINCE, position_open)
    assert kind.value not in text and "holds again" not in text, text
    assert "_" not in text, text                                 # no code name at all
    assert text.endswith(" since 06:09:58 UTC)"), text


def test_a_stop_loss_back_on_the_position_is_said_as_such() -> None:
    violation = Violation(InvariantKind.NO_STOP, SYMBOL, "LONG 0.1 open without a stop-loss")
    assert all_clear_text(violation, SINCE, position_open=True) == (
        "a stop-loss covers the position again (it had none since 06:09:58 UTC)")


def test_a_position_without_a_stop_that_closed_is_not_said_to_have_one() -> None:
    violation = Violation(InvariantKind.NO_STOP, SYMBOL, "LONG 0.1 open without a stop-loss")
    text = all_clear_text(violation, SINCE, position_open=False)
    assert text.startswith("the position is closed") and "covers" not in text


@pytest.mark.parametrize(("states", "words"), [
    ({"user_data": "down", "market": "up"}, "the user-data stream is speaking again"),
    ({"user_data": "down", "market": "down"},
     "the market-data and user-data streams are speaking again"),
])
def test_a_stream_back_is_named_in_words(states: dict[str, str], words: str) -> None:
    [violation] = silent_streams(states)
    assert all_clear_text(violation, SINCE, position_open=False) == (
        f"{words} (down since 06:09:58 UTC)")


async def test_the_monitor_clears_a_closed_naked_position_without_claiming_a_stop(tmp_path):
    """An untracked position with no stop, then closed by hand: the all-clears say the
    position is closed, not that a stop covers it."""
    world = await world_checking(tmp_path, TRADEBOT_ADOPT_POSITIONS="false")
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, Decimal("0.01"),
                                                     world.clock.now()))
    await steps(world, 6)
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    await steps(world, 3)
    assert Counter(n for n, _ in invariant_alerts(world))["INVARIANT_CLEARED"] == 3
    cleared = world.alerts("INVARIANT_CLEARED")
    assert not [text for text in cleared if "holds again" in text or "NO_STOP" in text]
    assert f"{SYMBOL}: the position is closed: it needs no stop-loss any more (it had none " \
           "since " in "\n".join(cleared)
    assert any(text.startswith(f"{SYMBOL}: the database's position is the exchange's again")
               for text in cleared)


# --- SL_MISSING -------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "how"), [
    ("CANCELED", "cancelled outside the agent (by hand?)"),
    ("EXPIRED", "ended on the exchange (EXPIRED), not by the agent"),
])
def test_sl_missing_reads_well_with_prices_as_everywhere_and_the_client_id_last(
        status: str, how: str) -> None:
    position = protected(quantity="0.500", stop="49790.0", tp="51000.0")
    stop_id = position.stop.order.client_id
    result = step(position, LegGone(OrderRole.STOP_LOSS, stop_id, True, status=status), NOW,
                  Policy())
    [alert] = [a for a in result.actions if isinstance(a, Alert)]
    assert alert.name is AlertName.SL_MISSING
    assert alert.text == (f"{SYMBOL}: stop-loss {how}; the LONG 0.5 has no stop until its "
                          f"replacement at 49,790 is live: replacing it now ({stop_id})")


# --- CLOSE with no closing fill -----------------------------------------------------------------

def journal_on(tmp_path) -> tuple[PositionJournal, TradeStore]:  # type: ignore[no-untyped-def]
    store = TradeStore.open(tmp_path / "t.db")
    clock = ManualClock(NOW)
    alerter = Alerter(store, clock)
    book = GuardBook(store, alerter, clock, Counters(), GuardConfig())
    return PositionJournal(store, alerter, book, clock), store


@pytest.mark.parametrize(("reason", "name"), [(CloseReason.MANUAL, "CLOSE"),
                                              (CloseReason.LIQUIDATION, "EXCHANGE_CLOSE")])
def test_a_close_whose_exit_was_not_read_says_the_pnl_is_unknown(tmp_path, reason, name):
    journal, store = journal_on(tmp_path)
    closed = make(state=PositionState.CLOSED, quantity="0", opened_at=NOW - timedelta(minutes=5),
                  closed_at=NOW, close_reason=reason, exit_price=None)
    journal.close(Finalized(closed, [], ["could not read the fills: HTTP 503"]))
    [alert] = [a for a in store.recent_alerts(5) if a.name == name]
    first_line = alert.text.splitlines()[0]
    assert "PnL unknown (no closing fill was read)" in first_line, alert.text
    assert "+0.00" not in alert.text and " at ?" not in alert.text and "0 closed" not in alert.text
    assert "held 5 min" in first_line
    # /trades lists it, with no made-up exit price or result; /pnl leaves it out and says so
    [trade] = recent_trades(store.closed_positions(), [], 10, lambda symbol: None)
    assert (trade.exit_price, trade.net, trade.net_fraction) == (None, None, None)
    assert trade.reason == reason.value
    pnl = period_pnl("all", store.closed_positions(), [], None)
    assert (pnl.trades, pnl.unknown, pnl.net) == (0, 1, 0)
    store.close()


# --- STALE_DATA --------------------------------------------------------------------------------

def test_stale_data_says_the_time_the_candle_was_due_like_other_alerts() -> None:
    monitor = FeedMonitor()
    monitor.watch(SYMBOL, datetime(2026, 11, 30, 6, 5, 29, 536462, tzinfo=UTC),
                  timedelta(minutes=5))
    [issue] = monitor.check(datetime(2026, 11, 30, 6, 11, tzinfo=UTC))
    assert issue.kind is FeedIssueKind.STALE
    assert issue.detail == "no candle since the one due at 06:10 UTC"


async def test_the_stale_data_alert_shows_no_raw_timestamp(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal()
    world.clock.set(world.clock.now() + timedelta(minutes=15))
    await world.engine.tick()
    [text] = world.alerts("STALE_DATA")
    assert "+00:00" not in text and " UTC" in text, text
