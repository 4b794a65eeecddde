"""A position closed by an earlier stop of ours (replaced by a /sl move, but still live:
its cancel failed, or it triggered while the cancel was on its way) is a STOP_LOSS close.
It was recorded MANUAL: close_record.close_reason looked at the leg's CURRENT stop (the
replacement, cancelled at the close) and, that one not filled, ignored the role named by
the last closing fill's client id (ours, the stop-loss role)."""

from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.positions import make
from tests.test_close_record import closing_fill
from tests.test_move_stop_command import cancels_refused, stops, world_with_a_long
from trader.close_record import close_reason
from trader.commands import CommandKind
from trader.domain import CloseReason, Order, OrderRole, OrderStatus, OrderType, Side


async def test_a_close_by_the_stop_a_move_replaced_is_a_stop_loss(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    cancels_fail = cancels_refused(world)
    old = position.stop.trigger_price
    wider = old - (position.entry_price - old)          # /sl further away
    await world.command(CommandKind.SL, symbol=SYMBOL, price=wider)
    assert len(await stops(world)) == 2                 # the old one's cancel failed
    cancels_fail[0] = False
    between = (old + wider) / 2                         # through the old stop only
    await world.step(between, low=between)
    await world.step(between)
    assert SYMBOL not in world.engine.positions
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.STOP_LOSS, closed.close_reason


def test_the_last_fill_by_an_earlier_stop_of_ours_names_the_stop_loss() -> None:
    position = make(live_legs=True)
    other = position.next_client_id(OrderRole.STOP_LOSS)[1]      # not the leg's order
    current = position.stop.order
    assert current is not None and current.client_id != other
    cancelled = Order(SYMBOL, current.client_id, Side.SELL, OrderType.STOP_MARKET,
                      OrderStatus.CANCELED, current.quantity, Decimal(0), Decimal(0),
                      trigger_price=current.trigger_price)
    assert close_reason(position, cancelled, None, None,
                        [closing_fill(other)]) is CloseReason.STOP_LOSS
