"""A stop that filled all it was for while the position stayed open (found by Hypothesis in
tests/test_lifecycle_machine.py's story property, 2026-12-01; the example database is not
kept, so the stories are written out here).

The entry (MARKET 0.010) fills 0.004, the engine ticks (a stop for 0.004 goes out), it fills
0.004 more, and the price reaches the stop: the stop fills its 0.004 while the entry is still
live, so the exchange's position stays 0.004 (+0.004 -0.004). Before, the stop's complete
LegFilled waited for a PositionGone that never came: the record kept believing in the filled
stop, and the rest had no stop for good. Now, once the fill's report is older than
FILL_REPORT_LAG and the position is still held, the stop is a leg gone: SL_MISSING, and the
rest is protected again (here, the mark at the level, by a close at market).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.machine_driver import assert_settled, run_story, settle
from tests.positions import leg_id, make
from trader.alerts import AlertName
from trader.domain import ExchangePosition, Order, OrderRole, OrderStatus, OrderType, Side
from trader.events import PlaceLeg, Policy
from trader.lifecycle import step
from trader.observe import FILL_REPORT_LAG, SymbolView, observe
from trader.order_tracker import TrackedOrder
from trader.position import PositionState

SYMBOL, QUANTITY = "BTCUSDT", Decimal("0.010")
NOW = datetime(2024, 1, 1, 12, tzinfo=UTC)
STORY = [(("entry_fill", "0.004"), 1), (("entry_fill", "0.004"), 0), (("price", -100), 0)]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("then_restart", [False, True])
def test_a_stop_filled_while_the_entry_fills_leaves_the_rest_protected(
        side: Side, then_restart: bool) -> None:
    story = STORY + ([(("restart",), 0)] if then_restart else [])
    driver = run_story(side, False, story)
    assert settle(driver), "still placing or cancelling long after the exchange calmed down"
    assert_settled(driver)


def test_the_operator_is_told_the_stop_filled_but_the_position_stayed() -> None:
    driver = run_story(Side.BUY, False, STORY)
    settle(driver)
    texts = [a.text for _, a in driver.alerts if a.name is AlertName.SL_MISSING]
    assert any("filled, yet the position is still open" in t for t in texts), texts


@pytest.mark.parametrize(("reported_ago", "replaced"), [(timedelta(seconds=2), False),
                                                          (FILL_REPORT_LAG, True)])
def test_a_stop_fill_reported_moments_ago_waits_for_the_position_report(
        reported_ago: timedelta, replaced: bool) -> None:
    """The usual order of Binance's reports: the stop's ORDER_TRADE_UPDATE says FILLED a
    moment before the ACCOUNT_UPDATE says flat. Inside FILL_REPORT_LAG the fill waits for
    the position report (no second stop sent to a position that is closing); past it, with
    the position still held, the stop is replaced."""
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, QUANTITY, "50000", "49500",
                    "51000")
    stop_id, tp_id = leg_id(SYMBOL, OrderRole.STOP_LOSS), leg_id(SYMBOL, OrderRole.TAKE_PROFIT)
    stop = Order(SYMBOL, stop_id, Side.SELL, OrderType.STOP_MARKET, OrderStatus.FILLED,
                 QUANTITY, filled_qty=QUANTITY, avg_price=Decimal("49500"),
                 trigger_price=Decimal("49500"), reduce_only=True, updated_at=NOW)
    target = Order(SYMBOL, tp_id, Side.SELL, OrderType.TAKE_PROFIT_MARKET, OrderStatus.NEW,
                   QUANTITY, trigger_price=Decimal("51000"), reduce_only=True, updated_at=NOW)
    known = {stop_id: TrackedOrder(stop, NOW - reported_ago),
             tp_id: TrackedOrder(target, NOW - timedelta(minutes=1))}
    view = SymbolView(SYMBOL, NOW, ExchangePosition(SYMBOL, QUANTITY, Decimal("50000")),
                      known, [target], Decimal("49500"))
    actions = []
    for event in observe(position, view):
        result = step(position, event, NOW, Policy())
        position, actions = result.position, actions + result.actions
    placed = [a for a in actions if isinstance(a, PlaceLeg) and a.role is OrderRole.STOP_LOSS]
    assert bool(placed) is replaced, actions
