"""Updates the Bot API documentation allows that are not new commands for this bot: a
command addressed to another bot in a group, edits, channel posts, membership changes,
messages without text, and a burst of stale commands after an outage. None is run; the
bot goes on. Through the real python-telegram-bot and the fake Bot API
(https://core.telegram.org/bots/api#update, #message; commands in groups:
https://core.telegram.org/bots/features#commands).
"""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import TelegramBot
from tests.fakes.telegram_objects import chat, user
from tests.telegram_outside import BOT_NAME, OutsideTelegram, message_fields, settle, texts_to
from tests.test_bot_support import GROUP, MEMBER, OWNER, STRANGER, RecordingEngine
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


async def test_a_command_for_another_bot_in_a_group_is_neither_run_nor_answered(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot) -> None:
    telegram.inject_message(GROUP, MEMBER, "/status@OtherBot")
    telegram.inject_message(GROUP, STRANGER, "/start@OtherBot")
    await settle()
    assert engine.received == []
    assert texts_to(telegram, GROUP) == []


async def test_a_command_for_us_by_name_in_a_group_is_run(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot) -> None:
    telegram.inject_message(GROUP, MEMBER, f"/status@{BOT_NAME.upper()}")
    await telegram.wait_for(lambda item: item.chat_id == GROUP and item.method == "sendMessage")
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_updates_that_are_not_new_commands_are_ignored_and_the_bot_goes_on(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock) -> None:
    now = int(clock.now().timestamp())
    telegram.inject_update({"edited_message": {**message_fields(OWNER, OWNER, "/close all", now),
                                               "edit_date": now}})
    telegram.inject_update({"channel_post": {"message_id": 5, "date": now, "text": "/status",
                                             "chat": {"id": -100777, "type": "channel",
                                                      "title": "news"}}})
    telegram.inject_update({"my_chat_member": {
        "chat": chat(GROUP), "from": user(MEMBER), "date": now,
        "old_chat_member": {"status": "member", "user": user(1)},
        "new_chat_member": {"status": "left", "user": user(1)}}})
    sticker = {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False}
    fields = message_fields(OWNER, OWNER, "", now)
    del fields["text"]
    telegram.inject_update({"message": {**fields, "sticker": sticker}})
    telegram.inject_update({"message": {**fields, "message_id": 9001, "caption": "/close all",
                                        "photo": [{"file_id": "p", "file_unique_id": "pu",
                                                   "width": 90, "height": 90}]}})
    await settle()
    assert engine.received == []
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: item.chat_id == OWNER and item.method == "sendMessage")
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_a_burst_of_stale_commands_after_an_outage_runs_none_and_is_answered_once(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock) -> None:
    """200 updates queued while the agent was down, with update_id gaps: none is run, the
    chat gets one answer for all of them (not 200), and a fresh command afterwards is run."""
    old = int((clock.now() - timedelta(hours=2)).timestamp())
    for index in range(200):
        telegram.skip_update_ids(index % 3)
        telegram.inject_message(OWNER, OWNER, "/close all" if index % 2 else "/long BTCUSDT",
                                old + index)
    answer = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                     and "again" in (item.plain or ""), timeout=10)
    await settle(1.5)
    assert engine.received == []
    assert "200 commands" in (answer.plain or "") and "none was executed" in (answer.plain or "")
    assert "/long, /close" in (answer.plain or "") and "192 more" in (answer.plain or "")
    assert [text for text in texts_to(telegram, OWNER) if "again" in text] == [answer.plain]
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=10)
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_stale_commands_of_two_chats_get_one_answer_each(
        telegram: OutsideTelegram, engine: RecordingEngine, bot: TelegramBot,
        clock: ManualClock) -> None:
    old = clock.now() - timedelta(minutes=30)
    telegram.inject_message(OWNER, OWNER, "/pause", old)
    telegram.inject_message(GROUP, MEMBER, "/resume", old)
    telegram.inject_message(OWNER, OWNER, "/wake", old + timedelta(minutes=1))
    await telegram.wait_for(lambda item: item.chat_id == GROUP and "again" in (item.plain or ""))
    await telegram.wait_for(lambda item: item.chat_id == OWNER and "again" in (item.plain or ""))
    await settle()
    [owner_answer] = texts_to(telegram, OWNER)
    [group_answer] = texts_to(telegram, GROUP)
    assert "2 commands" in owner_answer and "/pause, /wake" in owner_answer
    assert "waited 30 min" in group_answer and "not executed" in group_answer
    assert engine.received == []
