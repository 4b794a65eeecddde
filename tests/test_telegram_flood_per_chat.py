"""Flood control per chat. Telegram answers 429 {"ok": false, "error_code": 429, "description":
"Too Many Requests: retry after N", "parameters": {"retry_after": N}}
(https://core.telegram.org/bots/api#responseparameters). Its docs do not say whether that
wait is for one chat or for the whole bot; the limits a bot with a few chats meets are per
chat (one message per second in a chat, 20 per minute in a group:
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this). So both
behaviours are tested:
- a 429 for the group only: the owner's alerts and replies go on, the group gets its alerts
  once its wait is over;
- a 429 for every chat: each chat is refused at most once inside the wait (no hammering),
  and each gets the alert once after it.
Through the real python-telegram-bot and the fake Bot API.
"""

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.app import TelegramBot
from bot.sending import FloodGate
from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OutsideTelegram, settle
from tests.test_bot_support import GROUP, OWNER
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]
EVERY_CHAT = 0


class FloodWindows(OutsideTelegram):
    """sendMessage answers 429 inside a chat's flood window (or everyone's, EVERY_CHAT), with
    the whole seconds left, as Telegram does; every attempt is recorded (chat, time)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.windows: dict[int, float] = {}       # chat (or EVERY_CHAT) -> monotonic end
        self.attempts: list[tuple[int, float]] = []

    def flood_for(self, chat: int, seconds: float) -> float:
        self.windows[chat] = time.monotonic() + seconds
        return self.windows[chat]

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, now = int(params["chat_id"]), time.monotonic()
        self.attempts.append((chat, now))
        left = max(self.windows.get(chat, 0.0), self.windows.get(EVERY_CHAT, 0.0)) - now
        if left > 0:
            seconds = max(int(left + 0.999), 1)
            raise ApiError(429, f"Too Many Requests: retry after {seconds}",
                           {"retry_after": seconds})
        return await super()._send_message(params)

    def attempts_to(self, chat: int, before: float) -> int:
        return len([at for to, at in self.attempts if to == chat and at < before])


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[FloodWindows]:
    async with FloodWindows(now=clock.now) as fake:
        yield fake


def publish(alerter: Alerter, clock: ManualClock, name: AlertName, text: str) -> None:
    clock.advance(1)
    alerter.publish(Alert(name, text, "BTCUSDT", dedup_key=text), clock.now())


def got(telegram: FloodWindows, chat: int, text: str) -> Callable[[Any], bool]:
    return lambda item: item.chat_id == chat and text in (item.plain or "")


async def test_a_429_in_the_group_does_not_hold_the_owners_alerts_or_replies(
        telegram: FloodWindows, bot: TelegramBot, alerter: Alerter, clock: ManualClock) -> None:
    publish(alerter, clock, AlertName.FILL, "LONG 0.01 BTCUSDT filled")
    await telegram.wait_for(got(telegram, GROUP, "filled"))
    group_free = telegram.flood_for(GROUP, 5.0)
    publish(alerter, clock, AlertName.SL_MISSING, "BTCUSDT has no stop")
    await telegram.wait_for(got(telegram, OWNER, "no stop"))
    telegram.inject_message(OWNER, OWNER, "/status")
    reply = await telegram.wait_for(lambda item: item.chat_id == OWNER and "equity" in
                                    (item.plain or "").lower(), timeout=10)
    publish(alerter, clock, AlertName.FILL, "SHORT 0.02 BTCUSDT filled")
    owners = await telegram.wait_for(got(telegram, OWNER, "SHORT"), timeout=10)
    groups_first = await telegram.wait_for(got(telegram, GROUP, "no stop"), timeout=15)
    assert time.monotonic() >= group_free
    # The owner's reply and alert went out inside the group's wait, not after it.
    assert telegram.sent.index(reply) < telegram.sent.index(groups_first)
    assert telegram.sent.index(owners) < telegram.sent.index(groups_first)
    await telegram.wait_for(got(telegram, GROUP, "SHORT"), timeout=10)
    assert telegram.attempts_to(GROUP, before=group_free) == 2   # the filled one, the refused
    group = [(item.plain or "").split("\n")[1] for item in telegram.sent_to(GROUP, "sendMessage")]
    assert group == ["LONG 0.01 BTCUSDT filled", "BTCUSDT has no stop",
                     "SHORT 0.02 BTCUSDT filled"]


async def test_a_429_for_the_whole_bot_is_met_once_per_chat_and_nothing_is_lost(
        telegram: FloodWindows, bot: TelegramBot, alerter: Alerter, clock: ManualClock) -> None:
    everyone_free = telegram.flood_for(EVERY_CHAT, 2.0)
    publish(alerter, clock, AlertName.SL_MISSING, "BTCUSDT has no stop")
    for chat in (OWNER, GROUP):
        await telegram.wait_for(got(telegram, chat, "no stop"), timeout=10)
    await settle(0.3)
    for chat in (OWNER, GROUP):
        assert telegram.attempts_to(chat, before=everyone_free) <= 1
        assert len([item for item in telegram.sent_to(chat) if "no stop" in (item.plain or "")]) == 1


async def test_the_gate_holds_one_chat_after_its_429_and_every_chat_after_a_chatless_one() -> None:
    """FloodGate itself, as python-telegram-bot calls it (endpoint and the request's data)."""
    gate, called = FloodGate(), []

    async def refused(endpoint: str, data: dict[str, Any]) -> bool:
        raise RetryAfter(5)

    async def accepted(endpoint: str, data: dict[str, Any]) -> bool:
        called.append((endpoint, data.get("chat_id")))
        return True

    async def call(callback: Any, endpoint: str, data: dict[str, Any]) -> Any:
        return await gate.process_request(callback, (endpoint, data), {}, endpoint, data, None)

    with pytest.raises(RetryAfter):
        await call(refused, "sendMessage", {"chat_id": GROUP})
    with pytest.raises(RetryAfter):                      # the group: held, not sent
        await call(accepted, "editMessageText", {"chat_id": GROUP})
    assert await call(accepted, "sendMessage", {"chat_id": OWNER})      # the owner: goes on
    with pytest.raises(RetryAfter):
        await call(refused, "answerCallbackQuery", {"callback_query_id": "1"})
    with pytest.raises(RetryAfter):                      # no chat: held for every one
        await call(accepted, "answerCallbackQuery", {"callback_query_id": "2"})
    assert called == [("sendMessage", OWNER)]
