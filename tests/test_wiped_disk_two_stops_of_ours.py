"""A restart on a wiped disk that finds two live stops of the same position of ours: a move
(/sl, breakeven, trailing) placed new-first (sl2), the agent killed before it cancelled the
old one (sl1). The newer order is the last decision: the adoption keeps it and cancels the
older one. It kept whichever the exchange listed first (the older), cancelled the newer and
so undid the move, while a kill a moment later (sl1 already cancelled) kept the move."""

from decimal import Decimal

from tests.test_binance_engine import (  # noqa: F401  (fake: the fixture)
    SYMBOL,
    algo_posts,
    fake,
    start_engine,
    stop_engine,
)
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.startup import boot

MOVED = Decimal("49800.0")      # the move's level; the adopted stop sits 1 % away (49,500)


async def test_a_wiped_disk_keeps_the_newer_of_two_stops_of_ours(fake, tmp_path):  # noqa: F811
    await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
    first = await start_engine(fake, tmp_path / "a")
    await boot(first)
    sl1 = first.positions[SYMBOL].stop.order
    sl2 = sl1.client_id.removesuffix("sl1") + "sl2"
    await first.exchange.place(OrderRequest(              # the move's new stop, sent first
        SYMBOL, Side.SELL, OrderType.STOP_MARKET, sl1.quantity, sl2, OrderRole.STOP_LOSS,
        trigger_price=MOVED, reduce_only=True))
    await stop_engine(first)                               # killed before sl1's cancel
    posts = len(algo_posts(fake))

    second = await start_engine(fake, tmp_path / "b")      # wiped disk: empty database
    try:
        await boot(second)
        for _ in range(3):
            await second.tick()
        stop = second.positions[SYMBOL].stop
        assert (stop.order.client_id, stop.trigger_price) == (sl2, MOVED)
        live = [(o.client_id, o.trigger_price) for o in await second.exchange.open_orders(SYMBOL)
                if o.type is OrderType.STOP_MARKET]
        assert live == [(sl2, MOVED)]
        assert len(algo_posts(fake)) == posts               # nothing placed again
    finally:
        await stop_engine(second)
