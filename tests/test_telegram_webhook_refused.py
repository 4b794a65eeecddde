"""Webhook mode (TELEGRAM_WEBHOOK_URL) where Telegram refuses setWebhook, e.g. 400 "Bad Request:
bad webhook: Failed to resolve host: Name or service not known" (a mistyped host) or "bad
webhook: An HTTPS URL must be provided for webhook" (https://core.telegram.org/bots/api#setwebhook;
the error envelope https://core.telegram.org/bots/api#making-requests). The update channel
was opened before the bot counted as connected, so the alert delivery never started: every
alert, SL_MISSING included, waited in the outbox while sendMessage worked (review8). Sending
needs no update channel: alerts go out, and the operator reads why commands cannot arrive.

The URL is http:// here: the fake Bot API posts to the agent's plain-HTTP port, and with
TELEGRAM_API_URL set to another server than Telegram's the URL is that server's to judge
(trader/config_webhook.py).
"""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot, make_alert_sink
from storage import Store
from tests.fakes.telegram_html import ApiError
from tests.log_capture import logged
from tests.telegram_outside import OutsideTelegram
from tests.test_bot_support import FAST, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]
BAD_HOST = ApiError(400, "Bad Request: bad webhook: Failed to resolve host: Name or service "
                         "not known")


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_bot(telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter,
                store: Store, clock: ManualClock) -> TelegramBot:
    port = free_port()
    settings = bot_settings(telegram, telegram_allowed_chat_ids=[OWNER],
                            telegram_allowed_user_ids=[], port=port,
                            telegram_webhook_url=f"http://127.0.0.1:{port}/tg-hook")
    bot = make_alert_sink(settings, engine, alerter, store, clock, FAST)
    assert isinstance(bot, TelegramBot)
    return bot


def texts(telegram: OutsideTelegram) -> list[str]:
    return [item.plain or "" for item in telegram.sent_to(OWNER, "sendMessage")]


async def test_alerts_reach_the_phone_while_telegram_refuses_the_webhook(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    telegram.fail("setWebhook", BAD_HOST, times=1000)
    bot = webhook_bot(telegram, engine, alerter, store, clock)
    try:
        with logged("ERROR") as lines:
            await bot.start()
            alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: no stop-loss on the exchange"),
                            clock.now())
            await telegram.wait_for(lambda item: item.chat_id == OWNER
                                    and "SL_MISSING" in (item.plain or ""), timeout=10)
            told = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                           and "Commands cannot reach" in (item.plain or ""))
    finally:
        await bot.stop()
    assert "TELEGRAM_WEBHOOK_URL" in (told.plain or "")
    # Telegram's words (python-telegram-bot drops "Bad Request: " and lowers their case)
    assert "failed to resolve host" in (told.plain or "").lower()
    refused = [line for line in lines if "TELEGRAM_WEBHOOK_URL" in line]
    assert refused and "failed to resolve host" in refused[0].lower()
    assert len(refused) == 1, refused          # one line, not one per retry
    assert sum("Commands cannot reach" in text for text in texts(telegram)) == 1


async def test_commands_arrive_once_telegram_takes_the_webhook(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    telegram.fail("setWebhook", BAD_HOST, times=2)
    bot = webhook_bot(telegram, engine, alerter, store, clock)
    try:
        with logged("WARNING") as lines:
            await bot.start()
            await telegram.wait_for(lambda item: "Commands cannot reach" in (item.plain or ""))
            for _ in range(100):
                if telegram.webhook is not None:
                    break
                await asyncio.sleep(0.1)
            assert telegram.webhook is not None, "setWebhook never tried again"
            since = len(telegram.sent)
            telegram.inject_message(OWNER, OWNER, "/help")
            await telegram.wait_for(lambda item: "/status" in (item.plain or ""), since=since)
    finally:
        await bot.stop()
    assert any("ended after" in line and "TELEGRAM_WEBHOOK_URL" in line for line in lines)


async def test_a_webhook_telegram_takes_at_once_is_not_reported(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """Negative: nothing is said when the webhook is set at start, and it is set before
    start() returns."""
    bot = webhook_bot(telegram, engine, alerter, store, clock)
    try:
        with logged("ERROR") as lines:
            await bot.start()
            assert telegram.webhook is not None
            alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled"), clock.now())
            await telegram.wait_for(lambda item: "LONG 0.01 BTCUSDT" in (item.plain or ""))
    finally:
        await bot.stop()
    assert lines == []
    assert not any("Commands cannot reach" in text for text in texts(telegram))
