"""/sl back to the level of the stop that is live while a move away from it is still being
retried (the exchange refused the new stop: -2019). Nothing new is placed: the live stop is
the one asked for, and it stays. The answer said "the old stop-loss is still live: it is
cancelled on the next tick" of that very stop, the position's only one (found by a
reviewer); it now says the stop already there stays."""

from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL
from tests.test_rules_regime import calm_long
from trader.commands import CommandKind
from trader.domain import OrderRole, OrderType
from trader.exchange.base import ExchangeError


async def stops(world) -> list[tuple[str, Decimal | None]]:  # type: ignore[no-untyped-def]
    return [(o.client_id, o.trigger_price) for o in await world.open_orders()
            if o.type is OrderType.STOP_MARKET]


@pytest.mark.parametrize("back", ["auto", "price"])
async def test_sl_back_to_the_live_stop_keeps_it_and_says_so(tmp_path, back):
    world = await calm_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    planned = position.stop.trigger_price
    live_before = await stops(world)
    loose = world.paper.rules(SYMBOL).round_price(position.entry_price * Decimal("0.96"),
                                                  up=False)
    real_place, refusing = world.paper.place, [True]

    async def place(request):  # type: ignore[no-untyped-def]
        if refusing[0] and request.role is OrderRole.STOP_LOSS:
            raise ExchangeError(-2019, "Margin is insufficient.")
        return await real_place(request)
    world.paper.place = place  # type: ignore[method-assign]
    moved = await world.command(CommandKind.SL, symbol=SYMBOL, price=loose)
    assert not moved.ok and "not confirmed" in " ".join(moved.lines)

    answer = await world.command(CommandKind.SL, symbol=SYMBOL,
                                 **({"auto": True} if back == "auto" else {"price": planned}))
    text = " ".join(answer.lines)
    assert answer.ok, text
    assert "cancelled on the next tick" not in text, text
    assert "stays" in text, text
    refusing[0] = False
    for _ in range(3):
        await world.step()
    assert await stops(world) == live_before, "the live stop was kept, alone"
    assert world.engine.positions[SYMBOL].stop.trigger_price == planned
