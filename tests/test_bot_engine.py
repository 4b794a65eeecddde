"""Phone to exchange, end to end: the real python-telegram-bot against the fake Bot API,
driving the real engine on the paper exchange (no stand-in engine)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import FAST, OWNER, STRANGER
from trader.clock import SystemClock
from trader.config import load_settings


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    assert SYMBOL in world.engine.positions
    yield world


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(world: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    settings = load_settings(
        _env_file=None, telegram_bot_token=telegram.token, telegram_allowed_chat_ids=str(OWNER),
        telegram_api_url=telegram.api_url, symbols=SYMBOL)
    sink = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                           SystemClock(), FAST)
    assert isinstance(sink, TelegramBot)
    world.engine.alerter.sink = sink
    await sink.start()
    loop = asyncio.create_task(engine_loop(world))   # the engine runs queued commands
    yield sink
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    await sink.stop()


async def engine_loop(world: World) -> None:
    while True:
        await world.controller.process()
        await asyncio.sleep(0.01)


async def test_status_from_the_phone_shows_the_real_position_and_its_protection(world, telegram, bot):
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, "/status")
    reply = await telegram.wait_for(lambda item: "Equity" in (item.plain or "")
                                    or "equity" in (item.plain or ""), since=since)
    position = world.engine.positions[SYMBOL]
    assert SYMBOL in reply.plain and "LONG" in reply.plain
    text = reply.plain.replace(",", "")
    assert f"SL {position.stop.trigger_price:.0f}" in text or f"SL {position.stop.trigger_price}" in text
    assert "not attached" not in text


async def test_close_from_the_phone_confirms_then_flattens_the_exchange_position(world, telegram, bot):
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, f"/close {SYMBOL}")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    confirm = next(data for label, data in prompt.buttons if label.startswith("Close"))
    since = len(telegram.sent)
    telegram.press_button(OWNER, OWNER, prompt.message_id, confirm)
    await telegram.wait_for(lambda item: item.method in ("sendMessage", "editMessageText")
                            and "closed at" in (item.plain or ""), since=since, timeout=10)
    assert (await world.paper.position(SYMBOL)).quantity == 0
    assert await world.open_orders() == []
    assert world.store.closed_positions()[-1].close_reason.value == "COMMAND"


async def test_a_stranger_cannot_close_anything(world, telegram, bot):
    telegram.inject_message(STRANGER, STRANGER, f"/close {SYMBOL}")
    await asyncio.sleep(0.5)
    assert (await world.paper.position(SYMBOL)).quantity != 0
    assert not any(item.buttons for item in telegram.sent_to(STRANGER))


async def test_a_stop_loss_fill_reaches_the_phone_as_an_alert(world, telegram, bot):
    position = world.engine.positions[SYMBOL]
    since = len(telegram.sent)
    await world.step(position.stop.trigger_price - 50, low=position.stop.trigger_price - 200)
    alert = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                    and "STOP_LOSS" in (item.plain or ""), since=since, timeout=5)
    assert SYMBOL in alert.plain


async def test_webhook_mode_registers_the_url_and_answers_pushed_commands(world, telegram):
    """Web dynos: Telegram pushes updates to $PORT instead of being polled."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        _env_file=None, telegram_bot_token=telegram.token, telegram_allowed_chat_ids=str(OWNER),
        telegram_api_url=telegram.api_url, symbols=SYMBOL, port=str(port),
        telegram_webhook_url=f"http://127.0.0.1:{port}/tg-hook")
    sink = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                           SystemClock(), FAST)
    await sink.start()
    try:
        assert telegram.webhook["url"] == f"http://127.0.0.1:{port}/tg-hook"
        assert telegram.webhook["secret_token"]
        since = len(telegram.sent)
        telegram.inject_message(OWNER, OWNER, "/help")
        reply = await telegram.wait_for(lambda item: "/status" in (item.plain or ""), since=since)
        assert reply.chat_id == OWNER
        assert telegram.webhook_deliveries == [200]
    finally:
        await sink.stop()
