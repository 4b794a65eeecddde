"""Size added by hand on the same side (one-way mode: the position grows): the stop-loss
and take-profit follow the new size, and one RECONCILE_MISMATCH alert names the new size and
the risk at the stop; size added by the agent's own entry (a partial fill, a maker quote)
is the plan, with no alert.

Found by review5 (exp_hand_add_and_wipe.py): a LONG 0.507 grown to 0.807 by hand; the legs
grew, but nothing was said while the risk at the stop went from 192.91 to ~307 USDT.
"""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.positions import OPENED, leg_id, make
from tests.test_emergency import open_long
from trader.alerts import Alert, AlertName
from trader.domain import Fill, OrderRole, OrderType, Side
from trader.events import Policy, PositionSizeChanged
from trader.lifecycle import step
from trader.reconcile import OUTSIDE, addition_cause


async def test_size_added_by_hand_is_alerted_with_the_new_size_and_risk(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    added = Decimal("0.300")
    world.paper.publish(world.paper.sim.open_by_hand(SYMBOL, Side.BUY, added, world.clock.now()))
    await world.step()
    await world.step()
    grown = world.engine.positions[SYMBOL]
    assert grown.quantity == position.quantity + added
    [text] = world.alerts("RECONCILE_MISMATCH")
    assert "increased outside the agent" in text, text
    assert f"to {grown.quantity.normalize():,}" in text, text
    risk = (grown.entry_price - grown.stop.trigger_price) * grown.quantity
    assert f"risk {risk.quantize(Decimal('0.01')):,} USDT at the stop" in text, text
    legs = sorted((o.type, o.quantity) for o in await world.open_orders())
    assert legs == [(OrderType.STOP_MARKET, grown.quantity),
                    (OrderType.TAKE_PROFIT_MARKET, grown.quantity)]


async def test_size_reduced_by_hand_is_still_position_reduced_only(tmp_path):
    """Negative: a reduction is told as before (POSITION_REDUCED), nothing about an increase."""
    world = await make_world(tmp_path)
    position = await open_long(world)
    half = (position.quantity / 2).quantize(Decimal("0.001"))
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now(), quantity=half))
    await world.step()
    assert world.alerts("POSITION_REDUCED")
    assert not world.alerts("RECONCILE_MISMATCH")


def opening(client_id: str, quantity: str, minutes: int) -> Fill:
    return Fill(f"t{minutes}", SYMBOL, client_id, Side.BUY, Decimal(quantity),
                Decimal("50000"), Decimal("1"), Decimal("0"), OPENED + timedelta(minutes=minutes))


ENTRY = leg_id(SYMBOL, OrderRole.ENTRY)


def test_its_own_entry_filling_is_no_addition_to_tell() -> None:
    position = make(quantity="0.1")
    fills = [opening(ENTRY, "0.1", 1), opening(ENTRY, "0.2", 2)]
    assert addition_cause(position, Decimal("0.3"), fills, entry_working=False) == ""


def test_a_hand_fill_or_more_than_its_entry_bought_is_from_outside() -> None:
    position = make(quantity="0.1")
    hand = [opening(ENTRY, "0.1", 1), opening("web_1", "0.2", 2)]
    assert addition_cause(position, Decimal("0.3"), hand, entry_working=False) == OUTSIDE
    not_listed_yet = [opening(ENTRY, "0.1", 1)]
    assert addition_cause(position, Decimal("0.3"), not_listed_yet, False) == OUTSIDE


def test_without_opening_fills_its_working_entry_decides() -> None:
    position = make(quantity="0.1")
    assert addition_cause(position, Decimal("0.3"), None, entry_working=True) == ""
    assert addition_cause(position, Decimal("0.3"), None, entry_working=False) == OUTSIDE
    assert addition_cause(position, Decimal("0.3"), [], entry_working=False) == OUTSIDE


def test_the_state_machine_tells_an_addition_only_with_its_cause() -> None:
    position = make(quantity="0.1", entry="50000", stop="49500")
    grown = PositionSizeChanged(Decimal("0.3"), Decimal("50000"))
    own = step(position, grown, OPENED, Policy())
    assert own.position.quantity == Decimal("0.3")
    assert not [a for a in own.actions if isinstance(a, Alert)]
    told = step(position, replace(grown, cause=OUTSIDE), OPENED, Policy())
    [alert] = [a for a in told.actions if isinstance(a, Alert)]
    assert alert.name is AlertName.RECONCILE_MISMATCH
    assert alert.text == (f"{SYMBOL}: LONG increased {OUTSIDE} from 0.1 to 0.3; its "
                          "stop-loss and take-profit follow the new size: risk 150.00 USDT "
                          "at the stop 49,500 (was 50.00)")
