"""A tick without a mark judges nothing on the price, but the time in trade needs none: with
the mark stream down and premiumIndex refused, a position past TRADEBOT_TIME_IN_TRADE_MINUTES
stayed open for as long as no mark could be read (h-review14; a regression of the change
that stopped taking the book's middle for the mark)."""

from decimal import Decimal

from tests.engine_world import SYMBOL, World, make_world
from tests.test_engine import open_long
from trader.domain import CloseReason
from trader.exchange.base import ExchangeError


def without_a_mark(world: World) -> None:
    """The market stream pushes nothing and premiumIndex is refused."""
    def nothing_pushed(symbol, max_age):
        return None

    async def refused(symbol):
        raise ExchangeError(-1001, "DISCONNECTED: internal error", 503)

    world.paper.quote = nothing_pushed                # type: ignore[method-assign]
    world.paper.pushed_mark = nothing_pushed          # type: ignore[method-assign]
    world.paper.mark_price = refused                  # type: ignore[method-assign]


async def test_the_time_exit_fires_when_no_mark_can_be_read(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES=20)
    await open_long(world, sl_pct="0.02", tp_pct="0.04")
    without_a_mark(world)
    for _ in range(8):                                 # 40 min: twice the limit
        await world.step()
    assert (await world.paper.position(SYMBOL)).quantity == Decimal(0)
    assert world.store.closed_positions()[-1].close_reason is CloseReason.TIME_EXIT


async def test_within_its_time_a_position_without_a_mark_is_left_as_it_is(tmp_path):
    """Negative: before its limit nothing is closed for want of a mark."""
    world = await make_world(tmp_path, TRADEBOT_TIME_IN_TRADE_MINUTES=60)
    await open_long(world, sl_pct="0.02", tp_pct="0.04")
    without_a_mark(world)
    for _ in range(4):                                 # 20 min of 60
        await world.step()
    assert (await world.paper.position(SYMBOL)).quantity > 0
    assert world.store.closed_positions() == []
