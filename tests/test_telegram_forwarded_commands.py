"""A forwarded command is not executed: it was typed by someone else, or by the owner at
another time, and its Message.date is the moment of the forward, so the 60 s stale rule
cannot see how old it is. Telegram marks such a message with `forward_origin`
("Information about the original message for forwarded messages",
https://core.telegram.org/bots/api#message); its MessageOrigin carries the original `date`
and who wrote it (MessageOriginUser / MessageOriginHiddenUser / MessageOriginChat /
MessageOriginChannel, https://core.telegram.org/bots/api#messageorigin). The bot answers
one line and runs nothing; a command typed afterwards runs as usual. Through the real
python-telegram-bot and the fake Bot API.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import TelegramBot
from tests.fakes.telegram_objects import user
from tests.telegram_outside import OutsideTelegram, message_fields, settle, texts_to
from tests.test_bot_support import GROUP, MEMBER, OWNER, STRANGER, RecordingEngine
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def forwarded(chat_id: int, user_id: int, text: str, now: int, origin: dict[str, Any],
              message_id: int = 9100) -> dict[str, Any]:
    """A message forwarded into `chat_id` now; `origin` is its documented MessageOrigin."""
    return {"message": message_fields(chat_id, user_id, text, now, message_id,
                                      forward_origin=origin)}


ORIGINS = {
    # https://core.telegram.org/bots/api#messageoriginuser
    "user": lambda date: {"type": "user", "date": date, "sender_user": user(OWNER)},
    # https://core.telegram.org/bots/api#messageoriginhiddenuser
    "hidden_user": lambda date: {"type": "hidden_user", "date": date,
                                 "sender_user_name": "someone"},
    # https://core.telegram.org/bots/api#messageoriginchannel
    "channel": lambda date: {"type": "channel", "date": date, "message_id": 7,
                             "chat": {"id": -100777, "type": "channel", "title": "signals"}},
}


@pytest.mark.parametrize("origin", sorted(ORIGINS))
async def test_a_forwarded_close_is_refused_in_one_line_and_not_run(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock, origin: str) -> None:
    now = int(clock.now().timestamp())
    written = int((clock.now() - timedelta(days=3)).timestamp())
    telegram.inject_update(forwarded(OWNER, OWNER, "/close all", now, ORIGINS[origin](written)))
    answer = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                     and item.method == "sendMessage")
    await settle(0.3)
    assert engine.received == []
    assert answer.reply_markup is None               # no confirmation buttons either
    [text] = texts_to(telegram, OWNER)
    assert "forwarded" in text.lower() and "/close" in text and "not" in text
    assert "\n" not in text.strip()


async def test_a_burst_of_forwarded_commands_gets_one_answer_and_a_typed_one_runs(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock) -> None:
    """Each forwarded command is refused; one line answers a burst (one per chat per
    minute): a forwarded list of 20 commands would otherwise run into Telegram's flood
    control (about one message per second in a chat,
    https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)."""
    now = int(clock.now().timestamp())
    origin = ORIGINS["user"](now - 30)       # fresh: the stale rule would not have caught it
    telegram.inject_update(forwarded(GROUP, MEMBER, "/pause 1h", now, origin))
    telegram.inject_update(forwarded(GROUP, MEMBER, "/status", now, origin, message_id=9101))
    telegram.inject_update(forwarded(GROUP, MEMBER, "/nonsense", now, origin, message_id=9102))
    await telegram.wait_for(lambda item: item.chat_id == GROUP)
    await settle(0.3)
    assert engine.received == []
    [answer] = texts_to(telegram, GROUP)
    assert "forwarded" in answer.lower() and "\n" not in answer.strip()
    since = len(telegram.sent)
    telegram.inject_message(GROUP, MEMBER, "/status")              # typed: runs
    await telegram.wait_for(lambda item: item.chat_id == GROUP, since=since)
    assert [command.kind.value for command in engine.received] == ["status"]
    clock.advance(timedelta(seconds=61))                            # a minute later: answered
    later = int(clock.now().timestamp())
    since = len(telegram.sent)
    telegram.inject_update(forwarded(GROUP, MEMBER, "/close all", later,
                                     ORIGINS["user"](later - 30), message_id=9103))
    again = await telegram.wait_for(lambda item: item.chat_id == GROUP, since=since)
    assert "forwarded" in (again.plain or "").lower() and "/close" in (again.plain or "")
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_a_stranger_forwarding_a_command_gets_only_the_generic_refusal(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock) -> None:
    now = int(clock.now().timestamp())
    telegram.inject_update(forwarded(STRANGER, STRANGER, "/close all", now,
                                     ORIGINS["user"](now - 60)))
    await telegram.wait_for(lambda item: item.chat_id == STRANGER)
    await settle(0.3)
    assert engine.received == []
    assert texts_to(telegram, STRANGER) == ["This bot only answers its owner."]
