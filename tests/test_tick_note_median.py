"""`tick_note` tells closes all far above the tick floor without sorting them: the same
note (or none) as the median of every close compared with the floor gives."""

import statistics
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trader.backtest_notes import MIN_PRICE_TICKS, tick_note
from trader.exchange.sim_rules import DEFAULT_RULES, rules_for

RULES = DEFAULT_RULES["BTCUSDT"]
FLOOR = RULES.tick_size * MIN_PRICE_TICKS


def note_from_the_median(symbol: str, closes: list[Decimal]) -> bool:
    """Whether a note is due, as first written: the median of every close below the floor."""
    return bool(closes) and statistics.median(closes) < FLOOR


# closes around the floor and its double (the shortcut's bound), both sides of each
closes = st.lists(st.sampled_from([FLOOR / 2, FLOOR, FLOOR * 2, FLOOR * 2 - RULES.tick_size,
                                   FLOOR * 3, FLOOR - RULES.tick_size])
                  | st.decimals(min_value=Decimal(0), max_value=FLOOR * 4, places=3,
                                allow_nan=False, allow_infinity=False), max_size=30)


@given(closes)
def test_the_note_is_the_medians_word(values: list[Decimal]) -> None:
    assert bool(tick_note("BTCUSDT", values, RULES)) == note_from_the_median("BTCUSDT", values)


def test_closes_below_twice_the_floor_are_still_read_by_their_median() -> None:
    """No shortcut below twice the floor: a median under the floor is noted, one at or
    above it is not, though every close is under twice the floor."""
    low = [FLOOR - RULES.tick_size] * 3 + [FLOOR * 2 - RULES.tick_size]
    assert "is this the right symbol?" in tick_note("BTCUSDT", low, RULES)
    assert tick_note("BTCUSDT", [FLOOR] * 3 + [FLOOR / 2], RULES) == ""
    assert tick_note("XYZUSDT", [Decimal("0.01")] * 4, rules_for("XYZUSDT")) != ""
