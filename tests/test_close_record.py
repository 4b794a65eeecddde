"""Why a position closed (`trader.close_record.close_reason`), from what the agent knows."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.positions import OPENED, leg_id, make
from trader.close_record import close_reason
from trader.domain import CloseReason, Fill, OrderRole, Side

SYMBOL = "BTCUSDT"


def closing_fill(client_id: str) -> Fill:
    return Fill("t1", SYMBOL, client_id, Side.SELL, Decimal("0.1"), Decimal("49500"),
                Decimal("1"), Decimal("-50"), OPENED + timedelta(minutes=5))


@pytest.mark.parametrize(("client_id", "reason"), [
    (leg_id(SYMBOL, OrderRole.STOP_LOSS), CloseReason.STOP_LOSS),
    (leg_id(SYMBOL, OrderRole.TAKE_PROFIT, 2), CloseReason.TAKE_PROFIT),
    ("autoclose-1700000000000", CloseReason.LIQUIDATION),
    ("web_abc", CloseReason.MANUAL),                     # somebody's hand
    (leg_id(SYMBOL, OrderRole.STOP_LOSS, key="other"), CloseReason.MANUAL),  # not this one's
])
def test_a_position_closed_while_the_agent_was_down_is_labelled_from_its_last_closing_fill(
        client_id: str, reason: CloseReason) -> None:
    """The agent never saw the legs (it restarted after the close): the role in our client
    id of the last closing fill names the reason, the exchange's own ids come first, and a
    fill not of this position's orders is a close by hand."""
    position = make(live_legs=False)
    assert close_reason(position, None, None, None, [closing_fill(client_id)]) is reason
