"""/status and /positions show the position at the mark the agent has now, not at the one the
last position read or account update carried: Binance pushes no ACCOUNT_UPDATE when only the
price moves ("Event: Balance and Position Update" is sent on balance or position changes:
https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Balance-and-Position-Update), so the position's own mark went stale for as long as
nothing traded, while /sl judged levels against the fresh pushed mark (a phone showed
"PnL +0.00" for 31 s while the exchange's PnL reached -92)."""

from decimal import Decimal

from bot.format import format_position, format_result, number
from tests.engine_world import SYMBOL
from tests.test_move_stop_command import world_with_a_long
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.exchange.base import ExchangeError
from trader.views import position_view


async def test_positions_show_the_pushed_mark_and_its_pnl(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    seen = world.engine.tracker.position(SYMBOL).mark_price
    moved = seen * Decimal("0.99")
    world.paper.sim.set_price(SYMBOL, moved, world.clock.now())       # no tick, no read
    assert world.engine.tracker.position(SYMBOL).mark_price == seen   # still the old one
    view = position_view(world.engine, position, world.clock.now())
    tick = world.paper.rules(SYMBOL).tick_size
    assert view.mark_price == moved.quantize(tick)
    assert view.unrealized_pnl == position.unrealized_pnl(moved) < 0


async def test_without_a_fresh_mark_the_last_seen_one_is_shown(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    seen = world.engine.tracker.position(SYMBOL).mark_price
    world.paper.quote = lambda symbol, max_age: None                  # nothing pushed lately
    view = position_view(world.engine, position, world.clock.now())
    assert view.mark_price == seen.quantize(world.paper.rules(SYMBOL).tick_size)


async def test_a_stop_move_refused_and_retried_shows_the_live_stop_and_where_it_goes(tmp_path):
    """While a /sl's new stop is refused (-2019) and retried, the old stop is what protects:
    /status showed the new level with ✅ as if it were on the exchange."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    old = position.stop.trigger_price
    real_place = world.paper.place

    async def refused(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET:
            raise ExchangeError(-2019, "Margin is insufficient.")
        return await real_place(request)
    world.paper.place = refused
    level = (old + position.entry_price) / 2
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=level)
    assert not result.ok
    # The agent keeps placing it: waiting, as a /close held back is (it read "failed")
    assert format_result(CommandKind.SL, result).startswith("⏳ <b>Stop-loss: waiting</b>")
    view = position_view(world.engine, world.engine.positions[SYMBOL], world.clock.now())
    assert view.stop_trigger == old and view.stop_attached           # what protects now
    assert view.stop_moving_to == world.engine.positions[SYMBOL].stop.trigger_price != old
    legs = format_position(view)[1]
    assert f"SL {number(old)}" in legs and f"moving to {number(view.stop_moving_to)}" in legs, \
        legs


async def test_a_settled_stop_shows_no_move(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    view = position_view(world.engine, position, world.clock.now())
    assert view.stop_trigger == position.stop.trigger_price and view.stop_moving_to is None
    assert "moving to" not in format_position(view)[1]


async def test_with_the_market_stream_silent_the_mark_the_tick_read_is_shown(tmp_path):
    """The market streams quiet (nothing pushed for over 10 s) while the user-data stream is
    healthy: the tick reads Binance's mark over REST (GET /fapi/v1/premiumIndex "markPrice":
    https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
    rest-api/Mark-Price), but /status showed the position's mark of the last account
    update, which Binance's ACCOUNT_UPDATE does not carry: the entry price and "PnL +0.00"
    while the price fell. The mark shown is that mark, not the book's middle."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    world.paper.quote = lambda symbol, max_age: None                  # nothing pushed lately
    moved = position.entry_price * Decimal("0.98")
    world.paper.sim.set_price(SYMBOL, moved, world.clock.now())
    await world.engine.tick()
    position = world.engine.positions[SYMBOL]
    view = position_view(world.engine, position, world.clock.now())
    read = world.paper.sim.mark_price(SYMBOL)
    assert read == moved != world.paper.sim.book(SYMBOL).mid
    assert abs(view.mark_price - read) <= world.paper.rules(SYMBOL).tick_size / 2
    assert view.unrealized_pnl == position.unrealized_pnl(read) < 0


async def test_a_mark_read_long_ago_gives_way_to_the_positions_own(tmp_path):
    """The mark a tick read over REST counts for a minute; older, the position's last look
    (a REST position read) is shown as before."""
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    world.paper.quote = lambda symbol, max_age: None
    world.paper.sim.set_price(SYMBOL, position.entry_price * Decimal("0.98"), world.clock.now())
    await world.engine.tick()
    world.clock.advance(61)
    seen = world.engine.tracker.position(SYMBOL).mark_price
    view = position_view(world.engine, world.engine.positions[SYMBOL], world.clock.now())
    assert view.mark_price == seen.quantize(world.paper.rules(SYMBOL).tick_size)


async def test_an_equity_read_a_while_ago_says_so_beside_the_live_pnl(tmp_path):
    """/status's equity is the exchange's at the last balance read (up to a minute old while
    streaming: Binance pushes no ACCOUNT_UPDATE when only the price moves), its positions'
    PnL is at the mark of now: a reviewer saw "Equity 9,984.72" beside "PnL -149.92" while
    the exchange's equity was 9,837.59. The equity line says when it was read."""
    from bot.format import format_status
    from trader.views import status_view
    world = await world_with_a_long(tmp_path)
    read_at = world.engine.balance_at
    assert read_at is not None
    world.clock.advance(45)
    status = status_view(world.engine)
    assert status.equity_read_at == read_at
    assert "USDT (read 45 s ago)" in format_status(status)


async def test_a_fresh_equity_or_a_flat_account_shows_no_age(tmp_path):
    from bot.format import format_status
    from trader.views import status_view
    world = await world_with_a_long(tmp_path)
    assert "(read " not in format_status(status_view(world.engine))     # just read
    world.engine.interpreter.positions.clear()                          # flat: it does not move
    world.clock.advance(45)
    assert "(read " not in format_status(status_view(world.engine))
