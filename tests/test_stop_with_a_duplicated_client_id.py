"""A stop placement Binance refuses because an open order already holds its client id
(-4116 DUPLICATED_CLIENT_ORDER_ID "clientOrderId is duplicated": USDⓈ-M futures error
codes, https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code;
checked among open orders only, trader/exchange/sim.py). That order is ours, live under the
very id the leg was placing (sent before, its answer never recorded): the leg is protected,
not refused. Read back by its client id ("verify", trader/exchange/errors.py) and taken as
the placement's answer for what it covers (`Order.closes`; a closePosition holder:
tests/test_protective_read_back_close_position.py); never a reason to give up protection,
retry under another id, or alarm the operator. (-4015 CLIENT_ORDER_ID_INVALID on the same
page is about the id's form, which ours never break.)"""

from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.test_move_stop_command import stops, world_with_a_long
from trader.commands import CommandKind
from trader.domain import ClientId, OrderRole, OrderType
from trader.exchange.base import ExchangeError


def first_stop_refused_as_duplicated(world, holder) -> list[str]:  # type: ignore[no-untyped-def]
    """The first stop placement is refused with -4116 after `holder(request)` was placed
    under its id; the client ids refused."""
    real_place, refused = world.paper.place, []

    async def held(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET and not refused:
            await real_place(holder(request))
            refused.append(request.client_id)
            raise ExchangeError(-4116, "ClientOrderId is duplicated.")
        return await real_place(request)
    world.paper.place = held
    return refused


async def sl_halfway(world, position) -> Decimal:  # type: ignore[no-untyped-def]
    """/sl to half-way between the stop and the entry; the level."""
    moved = world.paper.rules(SYMBOL).round_price(
        (position.stop.trigger_price + position.entry_price) / 2, up=False)
    await world.command(CommandKind.SL, symbol=SYMBOL, price=moved)
    return moved


async def test_a_stop_refused_as_a_duplicated_id_is_the_open_order_holding_it(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    # The id is on the exchange (sent before, its answer never recorded): open.
    refused = first_stop_refused_as_duplicated(world, lambda request: request)
    moved = await sl_halfway(world, position)
    for _ in range(3):
        await world.step()
    held = str(ClientId(SYMBOL, position.key, OrderRole.STOP_LOSS, 2))
    assert refused == [held]
    assert [(o.client_id, o.trigger_price) for o in await stops(world)] == [(held, moved)]
    stop = world.engine.positions[SYMBOL].stop
    assert stop.order is not None and stop.order.client_id == held and stop.pending is None
    assert stop.trigger_price == moved and stop.retry_at is None, "not retried once taken"
    assert world.alerts("PROTECTION") == [], "an id held by our own open order is no refusal"


async def test_an_id_held_by_an_order_of_another_side_or_type_is_no_stop(tmp_path):
    """The order holding the id is not the stop that was sent (a BUY LIMIT placed by hand
    under the agent's next id): it protects nothing. Before, it was taken as the leg's
    stop (the -4116 read-back looked at its status alone): the long was believed
    protected by a buy order. Now the placement is refused (PROTECTION alert) and the
    stop is placed again under the next id."""
    from dataclasses import replace as replaced

    from trader.domain import Side

    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    low = world.paper.rules(SYMBOL).round_price(position.entry_price / 2, up=False)
    refused = first_stop_refused_as_duplicated(world, lambda request: replaced(
        request, side=Side.BUY, type=OrderType.LIMIT, price=low, trigger_price=None,
        reduce_only=False, close_position=False))
    moved = await sl_halfway(world, position)
    held = str(ClientId(SYMBOL, position.key, OrderRole.STOP_LOSS, 2))
    assert refused == [held]
    stop = world.engine.positions[SYMBOL].stop
    assert stop.order is None or stop.order.client_id != held, "a BUY LIMIT taken as the stop"
    assert world.alerts("PROTECTION"), "the refusal is said"
    for _ in range(40):
        await world.step()
        live = [o for o in await stops(world) if o.trigger_price == moved]
        if live:
            break
    assert [o.client_id for o in live] != [held] and len(live) == 1, "placed again"
