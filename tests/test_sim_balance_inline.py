"""The simulated account's balance (`Ledger._balance`, read every in-position candle) does
`unrealized_pnl` and `available`'s arithmetic inline: the very Decimals, digit for digit,
that the helpers give, for any positions, leverages and marks (a symbol without a mark
adds no unrealized PnL but still holds its margin)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trader.domain import ZERO, Balance
from trader.exchange.sim_ledger import Ledger, SimPosition, unrealized_pnl

SYMBOLS = ("BTCUSDT", "ETHUSDT", "XRPUSDT")
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("90000"), places=4,
                     allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=Decimal("-500"), max_value=Decimal("500"), places=3,
                         allow_nan=False, allow_infinity=False).filter(lambda q: q != 0)
positions = st.dictionaries(st.sampled_from(SYMBOLS), st.tuples(quantities, prices),
                            max_size=3)
marks = st.dictionaries(st.sampled_from(SYMBOLS), prices, max_size=3)
leverages = st.dictionaries(st.sampled_from(SYMBOLS), st.integers(1, 125), max_size=3)
money = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=8,
                    allow_nan=False, allow_infinity=False)


def by_helpers(ledger: Ledger, at: dict[str, Decimal], reserved: Decimal) -> Balance:
    """The balance as `_balance` read it first: one helper call per position and sum."""
    unrealized = ZERO
    for symbol, held in ledger.positions.items():
        mark = at.get(symbol)
        if mark is not None:
            unrealized += unrealized_pnl(held, mark)
    return Balance(ledger.wallet, unrealized, ledger.available(reserved))


@given(positions, marks, leverages, money, money)
def test_the_inline_balance_is_the_helpers_balance(held: dict, at: dict[str, Decimal],  # type: ignore[type-arg]
                                                   set_leverages: dict[str, int],
                                                   wallet: Decimal, reserved: Decimal) -> None:
    ledger = Ledger(wallet, default_leverage=5)
    ledger.leverages.update(set_leverages)
    for symbol, (quantity, entry) in held.items():
        ledger.positions[symbol] = SimPosition(quantity, entry)
    got = ledger._balance(at, reserved)
    want = by_helpers(ledger, at, reserved)
    assert got == want
    assert (str(got.wallet), str(got.unrealized_pnl), str(got.available)) == \
        (str(want.wallet), str(want.unrealized_pnl), str(want.available))
