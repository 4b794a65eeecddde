"""`display.on_step` in a kept context (trader/display.py `EXACT`) with each step's quantum
kept: the very number the rule's own arithmetic in a fresh 60-digit local context gives,
for any value and step (equal steps written with other trailing zeros included: the kept
quantum of one must not be another's). `price_like`'s quantize to its reference's exponent
reads as `price` on that power-of-ten tick did."""

from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import example, given
from hypothesis import strategies as st

from trader.display import on_step, price, price_like, quantity


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


references = st.sampled_from(["0.6012", "0.60", "0.6010", "1.0", "43000.1", "0.00001234",
                              "1E-8", "123.45000", "0.0", "50000", "5E+1", "0"]).map(Decimal)


def price_like_by_tick(value: Decimal, reference: Decimal) -> str:
    """price_like as it was written first: `price` on the tick 1E<exponent of reference>
    (no tick for a reference without decimals)."""
    exponent = reference.as_tuple().exponent
    tick = Decimal(1).scaleb(exponent) if isinstance(exponent, int) and exponent < 0 else None
    return price(value, tick)


@given(values, references)
@example(Decimal("0.61235"), Decimal("0.6012"))         # a tie: half up
@example(Decimal("0.61234999999999999999"), Decimal("0.6012"))
@example(Decimal("12345.678"), Decimal("50000"))        # no decimals: the 8-decimal rule
def test_price_like_reads_as_price_on_the_reference_s_tick(value: Decimal,
                                                           reference: Decimal) -> None:
    assert price_like(value, reference) == price_like_by_tick(value, reference)
