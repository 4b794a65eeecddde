"""/chart [SYMBOL] end to end: the real engine on the paper exchange answers with the
symbol's candles, its trades and the open position's levels (trader/chart_view.py), and the
real python-telegram-bot shows "sending photo…" while the picture is drawn."""

import asyncio
import io

import matplotlib.image
import pytest

from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER, RecordingEngine, ask
from trader.chart import draw_trading_chart
from trader.chart_view import chart_inputs
from trader.commands import CommandKind

pytest_plugins = ["tests.test_bot_support"]


async def open_long(world: World, sl_pct: str = "0.01", tp_pct: str = "0.006") -> None:
    world.strategy.next = long_signal(sl_pct, tp_pct)
    await world.step()
    assert SYMBOL in world.engine.positions


async def close_at_take_profit(world: World) -> None:
    take = world.engine.positions[SYMBOL].take_profit.trigger_price
    await world.step(take + 10, high=take + 100)
    assert SYMBOL not in world.engine.positions


def figure_text(world: World) -> str:
    figure = draw_trading_chart(chart_inputs(world.engine, SYMBOL))
    figure.canvas.draw()
    return "\n".join(text.get_text() for text in figure.texts + [
        t for axes in figure.axes for t in axes.texts])


# --- the engine's answer ------------------------------------------------------------------

async def test_chart_of_the_real_engine_has_the_trade_and_the_open_positions_levels(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    await open_long(world)
    await close_at_take_profit(world)
    for _ in range(2):                      # the 5 min cooldown after the close
        await world.step()
    await open_long(world, sl_pct="0.01", tp_pct="0.02")
    position = world.engine.positions[SYMBOL]

    inputs = chart_inputs(world.engine, SYMBOL)
    assert [p for _, p in inputs.prices] == [c.close for c in world.candles]
    assert [t.reason for t in inputs.trades] == ["TAKE_PROFIT"]
    assert inputs.open_trade is not None and inputs.traded
    assert inputs.open_trade.stop_trigger == position.stop.trigger_price
    assert inputs.open_trade.take_profit_trigger == position.take_profit.trigger_price

    text = figure_text(world)
    assert f"SL {position.stop.trigger_price.normalize():,f}" in text
    assert f"TP {position.take_profit.trigger_price.normalize():,f}" in text

    result = await world.command(CommandKind.CHART, symbol=SYMBOL)
    assert result.ok and result.png is not None
    image = matplotlib.image.imread(io.BytesIO(result.png), format="png")
    assert image.shape[:2] == (1350, 1080)
    assert result.lines == [f"{SYMBOL}: the last 3 h"]   # 34 five-minute candles


async def test_chart_before_the_first_trade_says_no_trades_yet(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    text = figure_text(world)
    assert "No trades yet" in text
    assert "max" not in text and "-0.00" not in text
    result = await world.command(CommandKind.CHART)
    assert result.ok and result.png and result.lines[0].startswith(f"{SYMBOL}: ")


async def test_chart_is_drawn_off_the_engines_loop(tmp_path, monkeypatch):
    """While the picture is drawn the loop keeps running (ticks, streams, the bot)."""
    world = await make_world(tmp_path)
    await world.warm_up(3)
    drawing = asyncio.Event()
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    def slow_draw(inputs):
        loop.call_soon_threadsafe(drawing.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
        return b"\x89PNG\r\n\x1a\nfake"

    monkeypatch.setattr("trader.chart_view.trading_chart_png", slow_draw)
    answer = asyncio.ensure_future(world.command(CommandKind.CHART))
    await asyncio.wait_for(drawing.wait(), 10)
    await world.step()                       # the engine ticks while the chart is drawn
    assert not answer.done()
    release.set()
    assert (await asyncio.wait_for(answer, 10)).png.startswith(b"\x89PNG")


# --- the bot --------------------------------------------------------------------------------

@pytest.mark.usefixtures("bot")
async def test_chart_shows_uploading_photo_then_sends_the_picture_of_the_named_symbol(
        telegram: FakeTelegram, engine: RecordingEngine):
    reply = await ask(telegram, "/chart ethusdt")
    assert reply.method == "sendPhoto"
    assert [(c.kind, c.symbol) for c in engine.received] == [(CommandKind.CHART, "ETHUSDT")]
    assert telegram.chat_actions == [(OWNER, "upload_photo")]
    assert telegram.calls.index("sendChatAction") < telegram.calls.index("sendPhoto")


@pytest.mark.usefixtures("bot")
async def test_chart_without_a_symbol_leaves_the_choice_to_the_engine(
        telegram: FakeTelegram, engine: RecordingEngine):
    await ask(telegram, "/chart")
    assert [(c.kind, c.symbol) for c in engine.received] == [(CommandKind.CHART, None)]


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("text", ["/chart DOGEUSDT", "/chart all", "/chart BTCUSDT 1d"])
async def test_chart_of_an_unknown_symbol_is_refused_with_the_usage(
        telegram: FakeTelegram, engine: RecordingEngine, text: str):
    reply = await ask(telegram, text)
    assert "/chart [SYMBOL]" in reply.plain
    assert engine.received == [] and telegram.chat_actions == []


@pytest.mark.usefixtures("bot")
async def test_a_failed_chat_action_does_not_stop_the_picture(
        telegram: FakeTelegram, engine: RecordingEngine):
    telegram.flood(retry_after=30, method="sendChatAction")   # refused, never waited out
    reply = await ask(telegram, "/chart")
    assert reply.method == "sendPhoto"
    assert telegram.chat_actions == []


async def test_a_trade_on_the_chart_counts_the_funding_paid_while_it_was_open(tmp_path):
    """The chart's trades are net of the funding booked while they were open, as /trades and
    the close alert count them (it used to show them without it)."""
    from decimal import Decimal

    from trader.trade_store import FundingPayment
    world = await make_world(tmp_path)
    await world.warm_up()
    await open_long(world)
    world.store.record_funding(FundingPayment(world.clock.now(), SYMBOL, Decimal("-1.25")))
    await close_at_take_profit(world)
    [trade] = chart_inputs(world.engine, SYMBOL).trades
    assert trade.funding == Decimal("-1.25")
    assert trade.net_pnl == trade.gross_pnl - trade.fees - Decimal("1.25")
