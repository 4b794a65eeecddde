"""Our own position whose stop never reached Binance, picked up on a wiped disk: the stop comes
back within the risk its entry was sized for (trader/reconcile.py `sized_stop`).

Found by review 11 (h-review11, /work/notes/rv11-scripts/test_rv11_wiped_disk_stop_never_sent.py):
the entry filled, the process died before its stop was sent, the disk was wiped. The pickup
found no stop id on the exchange and planned the adoption stop 1 % from the mark: an entry
sized for a 0.4 % stop (TRADEBOT_LEVERAGE=20, so the notional cap does not bind) then risked
505.5 USDT against a 250 USDT budget (equity 10,000 x TRADEBOT_RISK_BASE 2.5 %)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, long_signal, make_world
from tests.test_wiped_disk_keeps_the_exit_plan import wiped
from trader.domain import OrderRole, OrderType, Side
from trader.position import Leg, Position, PositionState
from trader.reconcile import sized_stop
from trader.symbol_rules import SymbolRules

D = Decimal
LEVER = {"TRADEBOT_LEVERAGE": "20"}
BUDGET = D("10000") * D("0.025")      # the paper wallet x TRADEBOT_RISK_BASE
FEE = D("0.0005")


class Killed(BaseException):
    """The process died here: nothing after this line ran."""


async def stop_after_a_wiped_restart(tmp_path, sl_pct: str):
    """A long planned with a `sl_pct` stop; the process dies as its stop is sent; a new
    process on an empty database boots and ticks. Its stop, its record, and what the stop
    loses if hit."""
    world = await make_world(tmp_path, **LEVER)
    await world.warm_up()
    place = world.paper.place

    async def dies_at_the_stop(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET:
            raise Killed
        return await place(request)
    world.paper.place = dies_at_the_stop            # type: ignore[method-assign]
    world.strategy.next = long_signal(sl_pct, "0.03")
    with pytest.raises(Killed):
        await world.step()
    world.paper.place = place                       # type: ignore[method-assign]
    world = await wiped(world, tmp_path, **LEVER)
    await world.step()
    [stop] = [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]
    record = world.engine.positions[SYMBOL]
    return stop, record, (record.entry_price - stop.trigger_price) * record.quantity


async def test_a_stop_never_sent_comes_back_within_the_risk_the_entry_was_sized_for(tmp_path):
    stop, record, loss = await stop_after_a_wiped_restart(tmp_path, "0.004")
    assert loss <= BUDGET, (stop.trigger_price, record.entry_price, record.quantity, loss)
    distance = (record.entry_price - stop.trigger_price) / record.entry_price
    assert D("0.0035") < distance < D("0.0045"), distance     # the 0.4 % plan, read back


async def test_negative_a_one_percent_plan_keeps_the_one_percent_stop(tmp_path):
    """The entry's size allows 1 %: the adoption's 1 % stop from the mark, as before."""
    stop, record, loss = await stop_after_a_wiped_restart(tmp_path, "0.01")
    assert loss <= BUDGET
    distance = (record.entry_price - stop.trigger_price) / record.entry_price
    assert D("0.0095") < distance < D("0.0105"), distance


RULES = SymbolRules(SYMBOL, tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("5"), max_qty=D("1000"))


def position(side: Side, quantity: str, entry: str = "100000") -> Position:
    return Position(symbol=SYMBOL, key="k1", side=side, state=PositionState.ATTACHING,
                    quantity=D(quantity), entry_price=D(entry), leverage=20,
                    opened_at=datetime(2026, 1, 1, tzinfo=UTC),
                    stop=Leg(OrderRole.STOP_LOSS, D("99000")),
                    take_profit=Leg(OrderRole.TAKE_PROFIT, D("101500")))


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_the_sized_stop_loses_at_most_the_budget_fees_included(side):
    held = position(side, "0.3")
    stop = sized_stop(held, RULES, BUDGET, FEE)
    loss = (abs(held.entry_price - stop) + FEE * (held.entry_price + stop)) * held.quantity
    assert BUDGET - D("0.1") <= loss <= BUDGET, (stop, loss)


@pytest.mark.parametrize(("quantity", "distance"), [("0.01", D("0.02")), ("100", D("0.004"))])
def test_the_sized_stop_is_clamped_as_the_planner_clamps_stops(quantity, distance):
    """A size that reads as a stop past 2 % (capped) or under 0.4 %: the clamp's bound."""
    held = position(Side.BUY, quantity)
    assert sized_stop(held, RULES, BUDGET, FEE) == held.entry_price * (1 - distance)
