"""`display.on_step` in a kept context (trader/display.py `EXACT`) with each step's quantum
kept: the very number the rule's own arithmetic in a fresh 60-digit local context gives,
for any value and step (equal steps written with other trailing zeros included: the kept
quantum of one must not be another's)."""

from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import example, given
from hypothesis import strategies as st

from trader.display import on_step, price, quantity


def reference(value: Decimal, step: Decimal) -> Decimal:
    """on_step as it was written first: a local context per call."""
    with localcontext() as exact:
        exact.prec = 60
        steps = (value / step).to_integral_value(rounding=ROUND_HALF_UP)
        exponent = min(step.normalize().as_tuple().exponent, 0)
        return (steps * step).quantize(Decimal(1).scaleb(exponent))


values = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"),
                     allow_nan=False, allow_infinity=False, places=28)
steps = st.sampled_from(["0.0001", "0.00010", "0.01", "0.010", "0.5", "0.05", "1", "1.0",
                         "25", "1E+1", "0.001", "0.0005", "0.00000001"]).map(Decimal)


@given(values, steps)
@example(Decimal("1.190099986090393258157504712"), Decimal("0.0001"))
@example(Decimal("0.00015"), Decimal("0.00010"))        # a tie, the step's trailing zero
@example(Decimal("-0.00025"), Decimal("0.0005"))
def test_on_step_is_the_rule_s_arithmetic(value: Decimal, step: Decimal) -> None:
    got = on_step(value, step)
    want = reference(value, step)
    assert got == want and str(got) == str(want)


def test_a_step_s_kept_quantum_is_its_own() -> None:
    """0.01 then 0.010 (equal, so one key) and 1.0: each rounds to its own decimals."""
    assert str(on_step(Decimal("1.23456"), Decimal("0.01"))) == "1.23"
    assert str(on_step(Decimal("1.23456"), Decimal("0.010"))) == "1.23"
    assert str(on_step(Decimal("7.5"), Decimal("1.0"))) == "8"
    assert str(on_step(Decimal("7.5"), Decimal("0.5"))) == "7.5"
    assert price(Decimal("1.190099986090393258157504712"), Decimal("0.0001")) == "1.1901"
    assert quantity(Decimal("0.0100"), Decimal("0.001")) == "0.01"
