"""Why a position closed (`trader.close_record.close_reason`), from what the agent knows."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.positions import OPENED, leg_id, make
from trader.close_record import close_reason, closed, lost
from trader.domain import CloseReason, FeeInKind, Fill, OrderRole, Side
from trader.fee_value import assets_to_value, fees_text

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


# --- fees charged in another asset (BNB with "BNB burn" on: trader/fee_value.py) ----------

def in_bnb(original: Fill, fee: str) -> Fill:
    return replace(original, fee=Decimal(fee), fee_asset="BNB")


EXIT = fill(Side.SELL, "0.5", "50100", "12.525", "50", 5, leg_id(SYMBOL, OrderRole.TAKE_PROFIT))
BNB_ENTRY, BNB_EXIT = in_bnb(ENTRY, "0.02083333"), in_bnb(EXIT, "0.020875")
AT = OPENED + timedelta(minutes=6)


def test_fees_in_usdt_are_summed_exactly_as_before() -> None:
    """Negative: every fee in USDT: the same sum, digit for digit, and no fee in kind."""
    own = [(ENTRY, Decimal("0.5")), (EXIT, Decimal("0.5"))]
    before = sum((f.fee * q / f.quantity if f.quantity else f.fee for f, q in own),
                 Decimal(0))
    final = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [ENTRY, EXIT])
    assert (str(final.fees), final.fees_in_kind) == (str(before), ())
    with_prices = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [ENTRY, EXIT],
                         prices={"BNB": Decimal("600")})
    assert with_prices == final


def test_fees_in_bnb_are_valued_at_its_price() -> None:
    final = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [BNB_ENTRY, BNB_EXIT],
                   prices={"BNB": Decimal("600")})
    bnb = Decimal("0.04170833")
    assert final.fees_in_kind == (FeeInKind("BNB", bnb, bnb * 600),)
    assert final.fees == Decimal("25.024998")
    assert lost(final) is False                 # +50 gross, 25.02 of fees: a win


def test_a_trade_that_lost_only_to_its_bnb_fees_is_a_loss() -> None:
    small = replace(BNB_EXIT, realized_pnl=Decimal("10"))
    final = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [BNB_ENTRY, small],
                   prices={"BNB": Decimal("600")})
    assert lost(final) is True                  # +10 gross, 25.02 of fees
    unpriced = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [BNB_ENTRY, small])
    assert unpriced.fees == 0 and unpriced.fees_in_kind[0].usdt is None
    assert lost(unpriced) is None               # +10 on a net that leaves the fee out


def test_unvalued_bnb_fees_never_turn_a_loss_into_an_unknown() -> None:
    """Fees can only deepen a loss: a trade below 0 before them is a loss whatever they
    were worth."""
    losing = replace(BNB_EXIT, realized_pnl=Decimal("-5"))
    final = closed(make(quantity="0.5"), AT, CloseReason.STOP_LOSS, [BNB_ENTRY, losing])
    assert lost(final) is True


def test_fees_in_usdt_and_in_bnb_in_one_trade_add_up() -> None:
    """BNB ran out mid-trade: the entry's fee in BNB, the exit's in USDT."""
    final = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [BNB_ENTRY, EXIT],
                   prices={"BNB": Decimal("600")})
    assert final.fees == Decimal("12.525") + Decimal("12.499998")
    assert fees_text(final.fees, final.fees_in_kind) == "25.02 USDT (0.02083333 BNB)"


def test_the_fees_text_says_each_asset_and_what_was_not_valued() -> None:
    assert fees_text(Decimal("0.4"), ()) == "0.40"
    unpriced = (FeeInKind("BNB", Decimal("0.0416"), None),)
    assert fees_text(Decimal("0"), unpriced) == "0.00 USDT + 0.0416 BNB not valued in USDT"
    assert assets_to_value([BNB_ENTRY, EXIT, in_bnb(EXIT, "0")]) == ["BNB"]


def test_any_other_asset_is_valued_at_its_price_or_left_unvalued_never_taken_for_usdt() -> None:
    """USDC (a USDC-margined account) has a USDT price; BNFCR (credits) has none to read."""
    usdc = replace(ENTRY, fee=Decimal("12.5"), fee_asset="USDC")
    bnfcr = replace(EXIT, fee=Decimal("12.5"), fee_asset="BNFCR")
    final = closed(make(quantity="0.5"), AT, CloseReason.TAKE_PROFIT, [usdc, bnfcr],
                   prices={"USDC": Decimal("0.9998")})
    assert final.fees_in_kind == (FeeInKind("BNFCR", Decimal("12.5"), None),
                                  FeeInKind("USDC", Decimal("12.5"), Decimal("12.4975")))
    assert final.fees == Decimal("12.4975")
