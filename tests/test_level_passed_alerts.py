"""A leg whose level the price passed before its order reached Binance (-2021 "Order would
immediately trigger", after its one retry): the position is closed at market, as the order
would have done. What the phone hears must be that, and only that: no "retrying in 2 s"
(the close is what happens, not a retry), and a take-profit passed is the profit taken, not
a CRITICAL. A refusal of any other kind still says it retries (the negative case)."""

from tests.test_alert_texts_formatted import SL, SYMBOL, TP, apply, position, stop_replaced
from trader.alerts import Alert, AlertName, Severity
from trader.domain import CloseReason
from trader.events import Flatten, LegGone, LegRejected
from trader.position import PositionState

PASSED = "-2021 ORDER_WOULD_IMMEDIATELY_TRIGGER: order would immediately trigger"


def alerts(actions: list) -> list[Alert]:
    return [a for a in actions if isinstance(a, Alert)]


def test_a_stop_level_passed_says_it_closes_and_never_that_it_retries() -> None:
    record, new_id = stop_replaced(position())
    record, actions = apply(record, LegRejected(SL, new_id, PASSED, level_passed=True))
    said = alerts(actions)
    assert [(a.name, a.level) for a in said] == [(AlertName.POSITION_UNPROTECTED,
                                                   Severity.CRITICAL)]
    assert "retrying" not in said[0].text
    assert "closing the LONG 0.5 at market" in said[0].text
    assert record.state is PositionState.CLOSING
    assert any(isinstance(a, Flatten) and a.reason is CloseReason.STOP_LOSS for a in actions)


def test_a_take_profit_level_passed_is_the_profit_taken_quietly_not_a_critical() -> None:
    record = position()
    gone = LegGone(TP, record.take_profit.order.client_id, True, status="CANCELED")  # type: ignore[union-attr]
    record, _ = apply(record, gone)
    new_id = record.take_profit.pending
    assert new_id is not None
    record, actions = apply(record, LegRejected(TP, new_id, PASSED, level_passed=True))
    said = alerts(actions)
    assert [(a.name, a.level) for a in said] == [(AlertName.PROTECTION, Severity.INFO)]
    assert said[0].text == (f"{SYMBOL}: Binance refused the take-profit at 51,000: the price "
                            f"is already past it ({PASSED}); closing the LONG 0.5 at market, "
                            "as the take-profit would have")
    assert record.state is PositionState.CLOSING


def test_a_refusal_with_the_level_not_passed_still_says_it_retries() -> None:
    record, new_id = stop_replaced(position())
    record, actions = apply(record, LegRejected(SL, new_id, "-2019 MARGIN_NOT_SUFFICIENT"))
    [said] = alerts(actions)
    assert said.name is AlertName.POSITION_UNPROTECTED
    assert "retrying in 2 s" in said.text
    assert record.state is not PositionState.CLOSING
