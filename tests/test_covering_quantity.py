"""`covering_quantity` (trader/exchange_actions.py): a quantity on the step grid is taken as
it is without the division (every leg's quantity is planned on it); one off the grid is
rounded up as before."""

from decimal import ROUND_CEILING, Decimal

from hypothesis import given
from hypothesis import strategies as st

from trader.market_exit import covering_quantity
from trader.symbol_rules import SymbolRules


def rules(step: str) -> SymbolRules:
    return SymbolRules("XRPUSDT", tick_size=Decimal("0.0001"), step_size=Decimal(step),
                       min_qty=Decimal(step), min_notional=Decimal("5"))


def rounded_up(quantity: Decimal, step: Decimal) -> Decimal:
    """The rule as it read before the on-grid shortcut."""
    rounded = (quantity / step).to_integral_value(rounding=ROUND_CEILING) * step
    return quantity if rounded == quantity else rounded


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6),
       st.sampled_from(["0.001", "0.1", "1", "0.5", "10"]))
def test_covering_quantity_is_the_rounding_up_it_was(quantity: Decimal, step: str) -> None:
    covered = covering_quantity(quantity, rules(step))
    assert covered == rounded_up(quantity, Decimal(step))
    assert str(covered) == str(rounded_up(quantity, Decimal(step)))     # the same digits


def test_on_the_grid_the_quantity_itself() -> None:
    quantity = Decimal("12.30")
    assert covering_quantity(quantity, rules("0.1")) is quantity


def test_off_the_grid_rounded_up_not_taken_as_it_is() -> None:
    """Negative: the shortcut is not taken off the grid."""
    assert covering_quantity(Decimal("12.34"), rules("0.1")) == Decimal("12.4")
    assert covering_quantity(Decimal("0.05"), rules("0.1")) == Decimal("0.1")
