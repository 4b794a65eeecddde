"""A chat that blocked the bot: every send there answers 403 {"ok": false, "error_code": 403,
"description": "Forbidden: bot was blocked by the user"} (the error envelope of
https://core.telegram.org/bots/api#making-requests; the description is Telegram's). Unlike
"chat not found" it ends when the user unblocks the bot, so its alerts are not given up:
- the only chat blocked: the alerts stay pending in the outbox;
- another chat still takes them: they are marked sent, and the blocked chat is owed them;
- the blocked chat is asked again at a slow rate (not at every delivery pass), logged
  CRITICAL once, and once it takes messages again it gets what it missed, CRITICAL first.
Through the real python-telegram-bot and the fake Bot API.
"""

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from bot.app import TelegramBot, make_alert_sink
from storage import Store
from tests.log_capture import logged
from tests.telegram_outside import OutsideTelegram, settle
from tests.test_bot_support import FAST, GROUP, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]

RETRY = 1.0          # seconds between two tries of the blocked chat (production: 300)


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The WARNING and CRITICAL messages logged during the test."""
    with logged("WARNING") as lines:
        yield lines


@asynccontextmanager
async def started(telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter,
                  store: Store, clock: ManualClock, chats: list[int],
                  retry: float = RETRY) -> AsyncIterator[None]:
    settings = bot_settings(telegram, telegram_allowed_chat_ids=chats)
    sink = make_alert_sink(settings, engine, alerter, store, clock,
                           replace(FAST, blocked_chat_retry=retry))
    assert isinstance(sink, TelegramBot)
    await sink.start()
    try:
        yield
    finally:
        await sink.stop()


PUBLISHED = {"LONG 0.01 BTCUSDT filled": AlertName.FILL,
             "BTCUSDT has no stop": AlertName.SL_MISSING,
             "SHORT 0.02 ETHUSDT filled": AlertName.FILL,
             "LONG 0.03 BTCUSDT filled": AlertName.FILL}


def publish_three(alerter: Alerter, clock: ManualClock) -> None:
    """A routine fill, then a CRITICAL one, then another fill."""
    for text, name in list(PUBLISHED.items())[:3]:
        clock.advance(1)
        alerter.publish(Alert(name, text, "BTCUSDT", dedup_key=text), clock.now())


def alert_texts(telegram: OutsideTelegram, chat: int) -> list[str]:
    """The alert lines a chat received (the line after an alert's title), in order."""
    return [line for item in telegram.sent_to(chat, "sendMessage")
            for line in (item.plain or "").split("\n")[1:2] if line in PUBLISHED]


async def until(condition: Callable[[], bool], bound: float = 10.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await settle(0.02)


def about_the_chat(lines: list[str], chat: int) -> list[str]:
    """The lines that say the chat refuses the bot (CRITICAL: its first, and reminders)."""
    return [line for line in lines if f"chat {chat} refuses" in line and "ended" not in line]


async def test_the_only_chat_blocked_keeps_its_alerts_and_gets_them_critical_first_once_unblocked(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock, log_lines: list[str]) -> None:
    telegram.block(OWNER)
    async with started(telegram, engine, alerter, store, clock, [OWNER]):
        publish_three(alerter, clock)
        await telegram.wait_for_call("sendMessage")
        await settle(RETRY * 0.6)                 # ~3 delivery passes: no second try yet
        first = telegram.times_of("sendMessage")[0]
        assert len([at for at in telegram.times_of("sendMessage") if at < first + RETRY]) == 1
        assert [alert.status for alert in store.pending_alerts()] == ["pending"] * 3
        assert store.recent_alerts() and all(a.status == "pending" for a in store.recent_alerts())
        await telegram.wait_for_call("sendMessage", after=1, timeout=5)   # the slow retry
        assert len(about_the_chat(log_lines, OWNER)) == 1
        telegram.unblock(OWNER)
        await until(lambda: len(alert_texts(telegram, OWNER)) == 3)
        await until(lambda: store.pending_alerts() == [])
    assert alert_texts(telegram, OWNER) == ["BTCUSDT has no stop", "LONG 0.01 BTCUSDT filled",
                                            "SHORT 0.02 ETHUSDT filled"]
    assert {alert.status for alert in store.recent_alerts()} == {"sent"}
    assert any("ended after" in line and f"chat {OWNER}" in line for line in log_lines)
    assert len(about_the_chat(log_lines, OWNER)) == 1


async def test_a_blocked_group_gets_what_it_missed_once_it_takes_messages_again(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock, log_lines: list[str]) -> None:
    telegram.block(GROUP)
    async with started(telegram, engine, alerter, store, clock, [OWNER, GROUP]):
        publish_three(alerter, clock)
        await until(lambda: len(alert_texts(telegram, OWNER)) == 3)
        await until(lambda: store.pending_alerts() == [])     # the owner has them: sent
        assert {alert.status for alert in store.recent_alerts()} == {"sent"}
        clock.advance(1)
        alerter.publish(Alert(AlertName.FILL, "LONG 0.03 BTCUSDT filled", "BTCUSDT"), clock.now())
        await until(lambda: len(alert_texts(telegram, OWNER)) == 4)
        telegram.unblock(GROUP)
        await until(lambda: len(alert_texts(telegram, GROUP)) == 4)
    assert alert_texts(telegram, GROUP) == ["BTCUSDT has no stop", "LONG 0.01 BTCUSDT filled",
                                            "SHORT 0.02 ETHUSDT filled", "LONG 0.03 BTCUSDT filled"]
    assert len(about_the_chat(log_lines, GROUP)) == 1


async def test_a_command_from_the_unblocked_chat_brings_what_it_missed_at_once(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """The user unblocked the bot and wrote to it: no need to wait for the slow retry."""
    telegram.block(OWNER)
    async with started(telegram, engine, alerter, store, clock, [OWNER], retry=300):
        publish_three(alerter, clock)
        await telegram.wait_for_call("sendMessage")
        telegram.unblock(OWNER)
        telegram.inject_message(OWNER, OWNER, "/status")
        await until(lambda: len(alert_texts(telegram, OWNER)) == 3)
    assert alert_texts(telegram, OWNER) == ["BTCUSDT has no stop", "LONG 0.01 BTCUSDT filled", "SHORT 0.02 ETHUSDT filled"]
