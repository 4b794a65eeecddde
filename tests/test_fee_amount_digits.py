"""A fee charged in BNB is kept to Binance's 8 decimals (trader/fee_value.py AMOUNT_STEP),
also when a fill's fee is shared with the next position: a LONG reversed by hand with one
SELL larger than it (trader/close_record.py `own_part` shares its commission pro rata).
(review9 item 5: "fees 0.63 USDT (0.001041666666666666666666666667 BNB)" in the CLOSE,
/trades and /pnl.)"""

from datetime import UTC, datetime
from decimal import Decimal

from trader.domain import Fill, Side
from trader.fee_value import fees_text, trade_fees, unvalued_in

T = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def reversing_fill(fee: str = "0.003125") -> Fill:
    """A SELL of 0.3 whose first 0.1 closed the LONG, the rest opened a SHORT."""
    return Fill(trade_id="9", symbol="BTCUSDT", client_id="", side=Side.SELL,
                quantity=Decimal("0.3"), price=Decimal("50000"), fee=Decimal(fee),
                realized_pnl=Decimal("1"), time=T, fee_asset="BNB")


def share(fill: Fill, own: Decimal) -> Decimal:
    return fill.fee * own / fill.quantity          # as trader/close_record.py `closed`


def test_a_shared_bnb_fee_is_kept_to_binances_8_decimals():
    fill = reversing_fill()
    fees, kinds = trade_fees([(fill, share(fill, Decimal("0.1")))], {"BNB": Decimal("600")})
    [kind] = kinds
    assert kind.amount == Decimal("0.00104167"), kind
    assert kind.usdt == Decimal("0.62500200") == fees
    assert fees_text(fees, kinds) == "0.63 USDT (0.00104167 BNB)"


def test_an_unvalued_shared_bnb_fee_reads_to_8_decimals_in_pnl():
    fill = reversing_fill()
    _, kinds = trade_fees([(fill, share(fill, Decimal("0.1")))], {})
    assert unvalued_in([kinds]) == "0.00104167 BNB"


def test_a_fee_not_shared_is_kept_as_binance_wrote_it():
    """Negative: amounts Binance wrote (8 decimals at most) are summed unchanged."""
    first, second = reversing_fill("0.00312501"), reversing_fill("0.00000001")
    fees, kinds = trade_fees([(first, first.fee), (second, second.fee)], {"BNB": Decimal("600")})
    [kind] = kinds
    assert kind.amount == Decimal("0.00312502")
    assert kind.usdt == fees == Decimal("1.875012")
