"""Phone to exchange, end to end: the real python-telegram-bot against the fake Bot API,
driving the real engine on the paper exchange (no stand-in engine)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.app import TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, World, long_signal, make_world
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_bot_support import FAST, OWNER, STRANGER
from tests.test_engine import open_long
from trader import breaker_rules, cooldowns, guards
from trader.clock import SystemClock
from trader.config import load_settings
from trader.domain import OrderRole, Side
from trader.position import PositionState


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    world = await make_world(tmp_path)
    await open_long(world, "0.02", "0.04")
    yield world


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def flat(tmp_path) -> AsyncIterator[World]:
    """The real engine, warmed up, flat: no signal has come."""
    world = await make_world(tmp_path)
    await world.warm_up()
    assert not world.engine.positions
    yield world


@contextlib.asynccontextmanager
async def running_bot(world: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    settings = load_settings(
        _env_file=None, telegram_bot_token=telegram.token, telegram_allowed_chat_ids=str(OWNER),
        telegram_api_url=telegram.api_url, symbols=SYMBOL)
    sink = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                           SystemClock(), FAST)
    assert isinstance(sink, TelegramBot)
    world.engine.alerter.sink = sink
    await sink.start()
    loop = asyncio.create_task(engine_loop(world))   # the engine runs queued commands
    try:
        yield sink
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await sink.stop()


@pytest.fixture
async def bot(world: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    async with running_bot(world, telegram) as sink:
        yield sink


@pytest.fixture
async def flat_bot(flat: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    async with running_bot(flat, telegram) as sink:
        yield sink


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


async def test_status_rounds_prices_to_the_tick_and_shows_time_in_trade(world, telegram, bot):
    """An average entry price has more decimals than the tick (0.10 for BTCUSDT)."""
    from dataclasses import replace
    await world.step()
    position = world.engine.positions[SYMBOL]
    world.engine.interpreter.positions[SYMBOL] = replace(
        position, entry_price=Decimal("100011.04999999999999999999999"))
    reply = await ask_engine(telegram, "/status", "Equity")
    assert "@ 100,011 →" in reply.plain and "100011.04" not in reply.plain.replace(",", "")
    assert "· 5 min\n" in reply.plain


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


# --- manual entries, per-symbol pause, unlock: the real engine acts ----------------------------
async def confirm(telegram: FakeTelegram, text: str, button_start: str,
                  until: str, timeout: float = 10) -> SentItem:
    """Send a command, press the prompt's button, return the reply containing `until`."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    data = next(data for label, data in prompt.buttons if label.startswith(button_start))
    since = len(telegram.sent)
    telegram.press_button(OWNER, OWNER, prompt.message_id, data)
    return await telegram.wait_for(lambda item: item.method == "sendMessage"
                                   and until in (item.plain or ""), since=since, timeout=timeout)


async def ask_engine(telegram: FakeTelegram, text: str, containing: str) -> SentItem:
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    return await telegram.wait_for(lambda item: item.method == "sendMessage"
                                   and containing in (item.plain or ""), since=since, timeout=10)


@pytest.mark.parametrize(("command", "button", "side"), [
    ("/long BTCUSDT", "Buy", Side.BUY), ("/short btcusdt", "Sell", Side.SELL)])
async def test_manual_entry_is_sized_and_protected_like_a_signal_entry(flat, telegram, flat_bot,
                                                                       command, button, side):
    reply = await confirm(telegram, command, button, "done")
    position = flat.engine.positions[SYMBOL]
    assert position.side is side and position.state is PositionState.PROTECTED
    assert position.key.startswith("m")          # never shares client ids with a signal entry
    held = await flat.paper.position(SYMBOL)
    assert held.quantity == position.signed_quantity != 0
    roles = sorted(o.role.value for o in flat.engine.tracker.ours_live(SYMBOL))
    assert roles == sorted([OrderRole.STOP_LOSS.value, OrderRole.TAKE_PROFIT.value])
    assert len(await flat.open_orders()) == 2
    # the risk rules sized it: a stop 0.4-2 % away, at most 2.5 % of equity lost there
    distance = abs(position.entry_price - position.stop.trigger_price) / position.entry_price
    assert Decimal("0.004") <= distance <= Decimal("0.02")
    assert 0 < position.risk_amount() <= Decimal("10000") * Decimal("0.025")
    label = "LONG" if side is Side.BUY else "SHORT"
    assert f"{label} {position.quantity.normalize():f}" in reply.plain.replace(",", "")
    assert "stop-loss" in reply.plain and "on the exchange" in reply.plain


async def test_manual_entry_obeys_the_guards_checked_again_at_the_tap(flat, telegram, flat_bot):
    """A breaker that trips between the question and the tap refuses the entry (the guards
    refusing before the question: tests/test_bot_answers_at_once.py)."""
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, "/long BTCUSDT")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    crash = [flat.candle(100000, high=106000, low=100000)] * 5     # a 6 % range in 5 candles
    flat.engine.guards.apply(breaker_rules.check_crash, SYMBOL, crash, flat.clock.now(),
                             flat.engine.guards.config)
    since = len(telegram.sent)
    buy = next(data for label, data in prompt.buttons if label.startswith("Buy"))
    telegram.press_button(OWNER, OWNER, prompt.message_id, buy)
    refused = await telegram.wait_for(lambda item: "failed" in (item.plain or ""), since=since,
                                      timeout=10)
    assert "crash breaker on BTCUSDT active until" in refused.plain
    assert SYMBOL not in flat.engine.positions and (await flat.paper.position(SYMBOL)).quantity == 0
    flat.engine.guards.apply(breaker_rules.unlock, SYMBOL)
    await confirm(telegram, "/long BTCUSDT", "Buy", "done")
    assert flat.engine.positions[SYMBOL].side is Side.BUY


async def test_unlock_ends_the_cooldown_and_clears_the_symbols_breakers(flat, telegram, flat_bot):
    engine, now = flat.engine, flat.clock.now()
    engine.guards.apply(breaker_rules.check_crash, SYMBOL, [flat.candle(100000, high=106000,
                                                                 low=100000)] * 5, now,
                        engine.guards.config)
    engine.guard_state = cooldowns.start_cooldown(engine.guard_state, SYMBOL, now, loss=True)
    assert not engine.entry_allowed(SYMBOL)
    reply = await confirm(telegram, "/unlock BTCUSDT", "Unlock", "done")
    assert "crash breaker on BTCUSDT cleared by the operator" in reply.plain
    assert "BTCUSDT: cooldown ended" in reply.plain and "BTCUSDT: entries allowed" in reply.plain
    assert engine.entry_allowed(SYMBOL)
    assert engine.guard_state.breakers == {} and SYMBOL not in engine.guard_state.cooldowns


async def test_unlock_cancelled_changes_nothing(flat, telegram, flat_bot):
    engine = flat.engine
    engine.guard_state = cooldowns.start_cooldown(engine.guard_state, SYMBOL, flat.clock.now(),
                                               loss=True)
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, "/unlock BTCUSDT")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons), since=since)
    cancel = next(data for label, data in prompt.buttons if label == "Cancel")
    telegram.press_button(OWNER, OWNER, prompt.message_id, cancel)
    await telegram.wait_for(lambda item: item.plain == "Cancelled: nothing was done.", since=since)
    assert SYMBOL in engine.guard_state.cooldowns


async def test_pause_one_symbol_blocks_its_entries_until_resumed(flat, telegram, flat_bot):
    reply = await ask_engine(telegram, "/pause BTCUSDT", "Pause: done")
    assert "BTCUSDT: entries paused until /resume BTCUSDT" in reply.plain
    assert not flat.engine.guard_state.paused           # the account is not paused
    assert guards.allow_entry(flat.engine.guard_state, "ETHUSDT", flat.clock.now())[0]
    flat.strategy.next = long_signal()
    await flat.step()
    assert SYMBOL not in flat.engine.positions
    status = await ask_engine(telegram, "/status", "Equity")
    assert "running" in status.plain and "Paused BTCUSDT until /resume" in status.plain
    await ask_engine(telegram, "/resume BTCUSDT", "BTCUSDT: entries resumed")
    flat.strategy.next = long_signal()
    await flat.step()
    assert SYMBOL in flat.engine.positions


async def test_timed_pause_of_one_symbol_ends_by_itself(flat, telegram, flat_bot):
    reply = await ask_engine(telegram, "/pause 30m btcusdt", "Pause: done")
    assert "BTCUSDT: entries paused until" in reply.plain
    assert not flat.engine.entry_allowed(SYMBOL)
    for _ in range(7):                                 # 35 minutes of candles
        await flat.step()
    assert flat.engine.entry_allowed(SYMBOL)
    assert any("BTCUSDT: pause ended" in alert.text for alert in flat.store.recent_alerts(50))
