"""A closed trade's fees in USDT, pure: a fee charged in another asset valued at its price.

With "BNB burn" on (GET /fapi/v2/account "feeBurn": true) and BNB in the futures wallet,
Binance charges each trade's commission in BNB and names the asset beside the amount
(ORDER_TRADE_UPDATE "N", userTrades "commissionAsset"). Such a fee counts against the
trade like one in USDT, at what it was worth: its amount times the asset's price in USDT,
read once at the close (trader/fee_prices.py). A fee whose price could not be read is kept
as an amount of its asset, unvalued (until the close read-back values it at its price
then: `valued_later`): the record then claims no net in USDT that leaves it
out silently (`unvalued`), and the loss streak does not count the trade as a win on a
net that leaves it out (trader/close_record.py `lost`).

Other tools do alike: freqtrade values a fee in a third currency through a ticker of that
currency against the stake currency (its fee rate unknown when none can be read);
hummingbot's TradeFeeBase keeps flat fees as (token, amount) and converts them with a rate
source; nautilus_trader subtracts from a position's realized PnL only the commissions in
its settlement currency, and keeps the others per currency.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from trader.display import money, number
from trader.domain import SETTLEMENT_ASSET, ZERO, FeeInKind, Fill

# A fee's USDT value is kept to 8 decimals, as Binance writes its amounts
VALUE_STEP = Decimal("0.00000001")
# A fee's amount in its asset likewise: Binance writes a commission to 8 decimals
# ("commission": "-0.07819010", GET /fapi/v1/userTrades' example, https://developers.
# binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List);
# a fill's share of its fee (a reversal by hand: close_record.own_part) divides it further
AMOUNT_STEP = Decimal("0.00000001")


def assets_to_value(fills: Iterable[Fill]) -> list[str]:
    """The assets other than USDT that fees among `fills` were charged in, sorted."""
    return sorted({f.fee_asset for f in fills if f.fee_asset != SETTLEMENT_ASSET and f.fee})


def trade_fees(shares: Iterable[tuple[Fill, Decimal]], prices: Mapping[str, Decimal]
               ) -> tuple[Decimal, tuple[FeeInKind, ...]]:
    """The fees in USDT of a trade's fills, each with its share of the fill's fee (a fill
    shared with the next position: trader/close_record.py `own_part`), and the fees charged
    in other assets, each valued at its price in `prices` (absent: unvalued). The USDT
    total adds the valued ones; a trade charged in USDT alone is summed as it always was."""
    fees = ZERO
    in_kind: dict[str, Decimal] = {}
    for fill, share in shares:
        if fill.fee_asset == SETTLEMENT_ASSET:
            fees += share
        else:
            in_kind[fill.fee_asset] = in_kind.get(fill.fee_asset, ZERO) + share
    kinds = []
    for asset in sorted(in_kind):
        amount, price = in_kind[asset].quantize(AMOUNT_STEP), prices.get(asset)
        usdt = (amount * price).quantize(VALUE_STEP) if price is not None else None
        if usdt is not None:
            fees += usdt
        kinds.append(FeeInKind(asset, amount, usdt))
    return fees, tuple(kinds)


def valued_later(fees: Decimal, fees_in_kind: Sequence[FeeInKind],
                 prices: Mapping[str, Decimal]) -> tuple[Decimal, tuple[FeeInKind, ...]]:
    """A closed trade's `fees` and `fees_in_kind` with those left unvalued at its close
    valued at `prices` (read since: trader/close_readback.py) and added to the USDT fees;
    the others as they were, an asset without a price still unvalued."""
    kinds = []
    for fee in fees_in_kind:
        price = prices.get(fee.asset)
        if fee.usdt is None and price is not None:
            usdt = (fee.amount * price).quantize(VALUE_STEP)
            fee = FeeInKind(fee.asset, fee.amount, usdt)
            fees += usdt
        kinds.append(fee)
    return fees, tuple(kinds)


def unvalued(fees_in_kind: Sequence[FeeInKind]) -> list[FeeInKind]:
    """The fees whose price could not be read: not in the record's USDT fees."""
    return [fee for fee in fees_in_kind if fee.usdt is None]


def unvalued_in(trades: Iterable[Sequence[FeeInKind]]) -> str:
    """The fees not valued in USDT over several trades' `fees_in_kind`, summed per asset
    ("0.0416 BNB"); "" when there are none."""
    total: dict[str, Decimal] = {}
    for fees_in_kind in trades:
        for fee in unvalued(fees_in_kind):
            total[fee.asset] = total.get(fee.asset, ZERO) + fee.amount
    return amounts([FeeInKind(asset, total[asset]) for asset in sorted(total)])


def amounts(fees_in_kind: Sequence[FeeInKind]) -> str:
    """"0.0416 BNB" (", " between assets)."""
    return ", ".join(f"{number(fee.amount)} {fee.asset}" for fee in fees_in_kind)


def fees_text(fees: Decimal, fees_in_kind: Sequence[FeeInKind]) -> str:
    """How a trade's fees read: "0.40" when all were charged in USDT (as always); "24.99
    USDT (0.0416 BNB)" when some were charged in BNB and valued; "0.00 USDT + 0.0416 BNB not
    valued in USDT" when the price of BNB could not be read."""
    if not fees_in_kind:
        return money(fees)
    missing = unvalued(fees_in_kind)
    valued = [fee for fee in fees_in_kind if fee.usdt is not None]
    text = f"{money(fees)} USDT" + (f" ({amounts(valued)})" if valued else "")
    if missing:
        text += f" + {amounts(missing)} not valued in USDT"
    return text
