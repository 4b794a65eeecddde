"""A group where the bot may not write for now answers sendMessage with 400 "Bad Request: not
enough rights to send text messages to the chat" (an admin restricted it; on 2023-10-31
Telegram answered it by mistake to bots everywhere: python-telegram-bot#3956). Every 400 but
"can't parse entities" used to be taken as final: the alert, SL_MISSING included, was given
up for that chat, and marked failed when it was the only one (review8). Telegram's refusals
are told apart by what they are about (bot/telegram_refusals.py): the chat (kept and tried
again like a 403, the other chats told) or the text (sent another way, never dropped).
Descriptions: https://core.telegram.org/bots/api#making-requests.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from telegram.error import BadRequest, Forbidden

from bot.app import TelegramBot, make_alert_sink
from bot.telegram_refusals import Refusal, refusal_kind
from storage import Store
from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OutsideTelegram
from tests.test_bot_support import FAST, GROUP, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]
NO_RIGHTS = ApiError(400, "Bad Request: not enough rights to send text messages to the chat")
TOO_LONG = ApiError(400, "Bad Request: message is too long")
TOLD = "takes no message from the bot"


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def started(telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
            clock: ManualClock, chats: list[int]) -> TelegramBot:
    settings = bot_settings(telegram, telegram_allowed_chat_ids=chats)
    bot = make_alert_sink(settings, engine, alerter, store, clock,
                          replace(FAST, blocked_chat_retry=0.5))
    assert isinstance(bot, TelegramBot)
    return bot


def texts(telegram: OutsideTelegram, chat: int) -> list[str]:
    return [item.plain or "" for item in telegram.sent_to(chat, "sendMessage")]


async def until(condition: Callable[[], bool], bound: float = 10.0) -> None:
    for _ in range(int(bound / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the bound")


async def test_an_sl_missing_the_only_chat_could_not_take_for_now_arrives_later(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    bot = started(telegram, engine, alerter, store, clock, [GROUP])
    telegram.fail("sendMessage", NO_RIGHTS, times=4)
    try:
        await bot.start()
        alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: no stop-loss on the exchange"),
                        clock.now())
        # the group's admin gives the bot its right back (the fake answers normally again)
        await telegram.wait_for(lambda item: item.chat_id == GROUP
                                and "SL_MISSING" in (item.plain or ""), timeout=10)
    finally:
        await bot.stop()
    assert {a.status for a in store.recent_alerts() if a.name == "SL_MISSING"} == {"sent"}


async def test_a_restricted_group_is_owed_its_alerts_and_the_owner_is_told(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    telegram.restrict(GROUP)
    bot = started(telegram, engine, alerter, store, clock, [OWNER, GROUP])
    try:
        await bot.start()
        alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: no stop-loss on the exchange"),
                        clock.now())
        await telegram.wait_for(lambda item: item.chat_id == OWNER
                                and "SL_MISSING" in (item.plain or ""))
        told = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                       and TOLD in (item.plain or ""))
        await asyncio.sleep(1.2)                       # two more tries of the group
        telegram.unblock(GROUP)                        # the admin gives the right back
        await telegram.wait_for(lambda item: item.chat_id == GROUP
                                and "SL_MISSING" in (item.plain or ""), timeout=10)
    finally:
        await bot.stop()
    assert str(GROUP) in (told.plain or "") and "not enough rights" in (told.plain or "").lower()
    assert sum(TOLD in text for text in texts(telegram, OWNER)) == 1


async def test_a_text_telegram_refuses_arrives_as_a_stand_in_and_the_chat_goes_on(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """Negative: a refusal of the text does not set the chat aside; it is not told as one."""
    bot = started(telegram, engine, alerter, store, clock, [OWNER])
    telegram.fail("sendMessage", TOO_LONG, times=2)       # the HTML part, then the plain one
    try:
        await bot.start()
        alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: no stop-loss on the exchange"),
                        clock.now())
        stand_in = await telegram.wait_for(lambda item: "/alerts" in (item.plain or ""))
        alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled"), clock.now())
        await telegram.wait_for(lambda item: "LONG 0.01 BTCUSDT" in (item.plain or ""),
                                timeout=1.0)        # at once: the chat is not held
    finally:
        await bot.stop()
    assert "SL_MISSING" in (stand_in.plain or "") and "too long" in (stand_in.plain or "")
    assert not any(TOLD in text for text in texts(telegram, OWNER))
    await until(lambda: not store.pending_alerts())
    assert {a.status for a in store.recent_alerts()} == {"sent"}


async def test_even_a_stand_in_refused_keeps_the_alert_for_the_chat(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """Words we do not know, for the HTML, the plain text and the stand-in alike: the chat is
    what Telegram refuses, so the CRITICAL alert is kept and arrives once it is taken."""
    bot = started(telegram, engine, alerter, store, clock, [OWNER])
    telegram.fail("sendMessage", ApiError(400, "Bad Request: something new"), times=3)
    try:
        await bot.start()
        alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: no stop-loss on the exchange"),
                        clock.now())
        await telegram.wait_for(lambda item: "no stop-loss on the exchange" in (item.plain or ""),
                                timeout=10)
    finally:
        await bot.stop()
    assert {a.status for a in store.recent_alerts() if a.name == "SL_MISSING"} == {"sent"}


@pytest.mark.parametrize(("error", "kind"), [
    (BadRequest("Not enough rights to send text messages to the chat"), Refusal.CHAT),
    (BadRequest("Chat not found"), Refusal.CHAT),
    (BadRequest("Have no rights to send a message"), Refusal.CHAT),
    (BadRequest("Need administrator rights in the channel chat"), Refusal.CHAT),
    (Forbidden("Forbidden: bot was blocked by the user"), Refusal.CHAT),
    (BadRequest("Can't parse entities: unsupported start tag"), Refusal.TEXT),
    (BadRequest("Message is too long"), Refusal.TEXT),
    (BadRequest("Message text is empty"), Refusal.TEXT),
])
def test_refusals_are_told_apart_by_what_they_are_about(error: BadRequest, kind: Refusal) -> None:
    assert refusal_kind(error) is kind
