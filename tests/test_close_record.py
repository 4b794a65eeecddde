"""Why a position closed (`trader.close_record.close_reason`), from what the agent knows."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.positions import OPENED, leg_id, make
from trader.close_record import close_reason, closed
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


def fill(side: Side, quantity: str, price: str, fee: str, pnl: str, minutes: int,
         client_id: str = "") -> Fill:
    return Fill(f"t{minutes}", SYMBOL, client_id, side, Decimal(quantity), Decimal(price),
                Decimal(fee), Decimal(pnl), OPENED + timedelta(minutes=minutes))


ENTRY = fill(Side.BUY, "0.5", "50000", "12.5", "0", 1, leg_id(SYMBOL, OrderRole.ENTRY))


def test_a_reversing_fill_counts_only_the_part_that_closed_the_position() -> None:
    """A LONG 0.5 reversed by one SELL 1.0 (the exchange now SHORT 0.5): the trade held 0.5,
    pays half the SELL's fee, and keeps the SELL's realized profit (Binance realizes it on
    the closed part only)."""
    reversal = fill(Side.SELL, "1.0", "49000", "24.5", "-500", 5, "web_1")
    final = closed(make(quantity="0.5"), OPENED + timedelta(minutes=6), CloseReason.MANUAL,
                   [ENTRY, reversal], beyond=Decimal("0.5"))
    assert final.traded_quantity == Decimal("0.5")
    assert final.exit_price == Decimal("49000")
    assert final.fees == Decimal("12.5") + Decimal("12.25")
    assert final.realized_pnl == Decimal("-500")


def test_only_the_newest_closing_fills_are_cut_and_one_wholly_beyond_is_left_out() -> None:
    """A take-profit of half, then a hand SELL closing the rest and a later one opening the
    SHORT: only the SHORT's fill is left out."""
    entry = fill(Side.BUY, "1.0", "50000", "25", "0", 1, leg_id(SYMBOL, OrderRole.ENTRY))
    partial = fill(Side.SELL, "0.5", "51000", "12.75", "500", 2, leg_id(SYMBOL, OrderRole.PARTIAL_TP))
    rest = fill(Side.SELL, "0.5", "50500", "12.625", "250", 3, "web_1")
    short = fill(Side.SELL, "0.3", "50400", "7.56", "0", 4, "web_2")
    final = closed(make(quantity="0.5"), OPENED + timedelta(minutes=5), CloseReason.MANUAL,
                   [entry, partial, rest, short], beyond=Decimal("0.3"))
    assert final.traded_quantity == Decimal("1.0")
    assert final.exit_price == Decimal("50750")
    assert final.fees == Decimal("25") + Decimal("12.75") + Decimal("12.625")
    assert final.realized_pnl == Decimal("750")


def test_a_close_with_nothing_on_the_other_side_counts_every_fill_as_before() -> None:
    """Our stop closes the LONG (the exchange flat): every fill is the trade's."""
    stop = fill(Side.SELL, "0.5", "49500", "12.4", "-250", 5, leg_id(SYMBOL, OrderRole.STOP_LOSS))
    final = closed(make(quantity="0.5"), OPENED + timedelta(minutes=6), CloseReason.STOP_LOSS,
                   [ENTRY, stop])
    assert final.traded_quantity == Decimal("0.5")
    assert final.exit_price == Decimal("49500")
    assert final.fees == Decimal("24.9")
    assert final.realized_pnl == Decimal("-250")
