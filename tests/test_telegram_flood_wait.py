"""Flood control: a 429 with parameters.retry_after ("the number of seconds left to wait
before the request can be repeated", https://core.telegram.org/bots/api#responseparameters)
on one call holds every call that sends to that chat, alerts and command replies alike,
until it has passed; the alert is then delivered once, nothing lost. The bot here has one
chat (the owner's); per chat and per bot 429s: tests/test_telegram_flood_per_chat.py.
Through the real python-telegram-bot and the fake Bot API.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot, make_alert_sink
from bot.sending import FloodGate
from storage import Store
from tests.telegram_outside import OutsideTelegram
from tests.test_bot_support import FAST, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]
SENDING = ("sendMessage", "sendPhoto", "editMessageText", "sendChatAction")


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


@pytest.fixture
async def bot(telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter,
              store: Store, clock: ManualClock) -> AsyncIterator[TelegramBot]:
    """The owner's chat only: every send below goes to the chat that got the 429."""
    sink = make_alert_sink(bot_settings(telegram, telegram_allowed_chat_ids=[OWNER]), engine,
                           alerter, store, clock, FAST)
    assert isinstance(sink, TelegramBot)
    await sink.start()
    yield sink
    await sink.stop()


async def refusal_read(bot: TelegramBot, method: str) -> None:
    """Until the bot has read the 429 (its FloodGate holds the owner's chat). The fake
    logging the refused call is not enough: under load the bot read its answer 0.1 s and
    more later, and what it sent meanwhile was, rightly, sent (it did not know yet)."""
    gate = bot.application.bot.rate_limiter
    assert isinstance(gate, FloodGate)
    for _ in range(500):
        if gate.seconds_held(method, OWNER) > 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the bot never read the 429 on {method}")


def sending_times(telegram: OutsideTelegram) -> list[float]:
    return sorted(at for method in SENDING for at in telegram.times_of(method))


async def test_a_reply_is_not_sent_inside_the_wait_an_alert_got(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter,
        clock: ManualClock) -> None:
    telegram.flood(retry_after=2, method="sendMessage")
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled", "BTCUSDT"), clock.now())
    await telegram.wait_for_call("sendMessage")
    await refusal_read(bot, "sendMessage")
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "filled" in (item.plain or ""), timeout=10)
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=10)
    refused, *later = sending_times(telegram)
    assert later and min(later) - refused >= 2.0, [at - refused for at in later]
    assert len([item for item in telegram.sent_to(OWNER) if "filled" in (item.plain or "")]) == 1


async def test_a_chart_is_not_sent_inside_the_wait_a_reply_got(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter,
        clock: ManualClock) -> None:
    """sendPhoto refused with 429: the alert published meanwhile waits too, then both go."""
    telegram.flood(retry_after=2, method="sendPhoto")
    telegram.inject_message(OWNER, OWNER, "/chart")
    await telegram.wait_for_call("sendPhoto")
    await refusal_read(bot, "sendPhoto")
    refused = telegram.times_of("sendPhoto")[0]
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled", "BTCUSDT"), clock.now())
    await telegram.wait_for(lambda item: item.method == "sendPhoto", timeout=10)
    await telegram.wait_for(lambda item: "filled" in (item.plain or ""), timeout=10)
    later = [at for at in sending_times(telegram) if at > refused]
    assert later and min(later) - refused >= 2.0, [at - refused for at in later]


async def test_a_long_flood_wait_keeps_a_reply_for_later_instead_of_holding_its_handler(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """retry_after=30 is longer than a reply may wait (its policy's budget): the reply is not
    sent inside the wait, and it goes to the outbox at once (a REPLY alert delivered after
    the wait) instead of holding one of the bot's update handlers for 30 s."""
    telegram.flood(retry_after=30, method="sendMessage")
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled", "BTCUSDT"), clock.now())
    await telegram.wait_for_call("sendMessage")
    await refusal_read(bot, "sendMessage")
    telegram.inject_message(OWNER, OWNER, "/status")
    for _ in range(250):
        if any(alert.name == "REPLY" for alert in store.pending_alerts()):
            break
        await asyncio.sleep(0.02)
    assert [alert.name for alert in store.pending_alerts()] == ["FILL", "REPLY"]
    assert len(telegram.times_of("sendMessage")) == 1        # only the refused one
