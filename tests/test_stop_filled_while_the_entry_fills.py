"""A stop that filled all it was for while the position stayed open (found by Hypothesis in
tests/test_lifecycle_machine.py's story property, 2026-12-01; the example database is not
kept, so the stories are written out here).

The entry (MARKET 0.010) fills 0.004, the engine ticks (a stop for 0.004 goes out), it fills
0.004 more, and the price reaches the stop: the stop fills its 0.004 while the entry is still
live, so the exchange's position stays 0.004 (+0.004 -0.004). Before, the stop's complete
LegFilled waited for a PositionGone that never came: the record kept believing in the filled
stop, and the rest had no stop for good. Now, once the fill's report is older than
FILL_REPORT_LAG and the position is still held, the stop is a leg gone: SL_MISSING, and the
rest is protected again (here, the mark at the level, by a close at market).
"""

import pytest

from tests.machine_driver import assert_settled, run_story, settle
from trader.alerts import AlertName
from trader.domain import Side

STORY = [(("entry_fill", "0.004"), 1), (("entry_fill", "0.004"), 0), (("price", -100), 0)]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("then_restart", [False, True])
def test_a_stop_filled_while_the_entry_fills_leaves_the_rest_protected(
        side: Side, then_restart: bool) -> None:
    story = STORY + ([(("restart",), 0)] if then_restart else [])
    driver = run_story(side, False, story)
    assert settle(driver), "still placing or cancelling long after the exchange calmed down"
    assert_settled(driver)


def test_the_operator_is_told_the_stop_filled_but_the_position_stayed() -> None:
    driver = run_story(Side.BUY, False, STORY)
    settle(driver)
    texts = [a.text for _, a in driver.alerts if a.name is AlertName.SL_MISSING]
    assert any("filled, yet the position is still open" in t for t in texts), texts
