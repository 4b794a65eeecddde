"""A stranger's command raises UNAUTHORIZED with their ids and what they wrote: only the
allowed private chats read it (the other members of an allowed group must not read a
stranger's words); with only groups allowed, the groups hear of it without the message.
Every other alert still goes to every allowed chat (bot/alert_audience.py)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.alert_audience import addressed
from bot.app import TelegramBot, make_alert_sink
from storage import Store
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import (
    FAST,
    GROUP,
    MEMBER,
    OWNER,
    START,
    STRANGER,
    RecordingEngine,
    ask,
    bot_settings,
)
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName, OutgoingAlert
from trader.clock import ManualClock
from trader.commands import AlertView, CommandResult, LogLine

pytest_plugins = ["tests.test_bot_support"]
SECRET = "/close all my-secret-words"


def texts(telegram: FakeTelegram, chat_id: int, name: str) -> list[str]:
    return [i.plain or "" for i in telegram.sent_to(chat_id) if name in (i.plain or "")]


@pytest.mark.usefixtures("bot")
async def test_a_strangers_command_is_told_to_the_private_chat_only(telegram):
    telegram.inject_message(STRANGER, STRANGER, SECRET)
    warning = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                      and "UNAUTHORIZED" in (item.plain or ""))
    assert f"chat {STRANGER}" in warning.plain and SECRET in warning.plain
    await asyncio.sleep(0.5)          # several delivery passes
    assert texts(telegram, GROUP, "UNAUTHORIZED") == []


@pytest.mark.usefixtures("bot")
async def test_every_other_alert_still_reaches_the_group_too(telegram, alerter):
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT: stop-loss gone", "BTCUSDT"), START)
    for chat_id in (OWNER, GROUP):
        await telegram.wait_for(lambda item, chat=chat_id: item.chat_id == chat
                                and "SL_MISSING" in (item.plain or ""))


@pytest.fixture
async def groups_only_bot(telegram: FakeTelegram, engine: RecordingEngine, alerter: Alerter,
                          store: Store, clock: ManualClock) -> AsyncIterator[TelegramBot]:
    settings = bot_settings(telegram, telegram_allowed_chat_ids=[GROUP])
    sink = make_alert_sink(settings, engine, alerter, store, clock, FAST)
    assert isinstance(sink, TelegramBot)
    await sink.start()
    yield sink
    await sink.stop()


@pytest.mark.usefixtures("groups_only_bot")
async def test_with_only_groups_allowed_they_hear_of_it_without_the_strangers_words(
        telegram, store):
    telegram.inject_message(STRANGER, STRANGER, SECRET)
    warning = await telegram.wait_for(lambda item: item.chat_id == GROUP
                                      and "UNAUTHORIZED" in (item.plain or ""))
    assert "Nothing was executed" in warning.plain and "my-secret-words" not in warning.plain
    # the outbox keeps the whole text (for the log and /alerts in a private chat)
    [stored] = [a.text for a in store.recent_alerts(10) if a.name == "UNAUTHORIZED"]
    assert SECRET in stored


def test_the_audience_rule():
    unauthorized = OutgoingAlert(1, START, "UNAUTHORIZED", "WARN", "",
                                 f"chat 9, user 9. Nothing was executed.\nTheir last message: "
                                 f"{SECRET}")
    assert list(addressed(unauthorized, [OWNER, GROUP, 333])) == [OWNER, 333]
    [(chat, told)] = addressed(unauthorized, [GROUP]).items()
    assert chat == GROUP and told.text == "chat 9, user 9. Nothing was executed."
    other = OutgoingAlert(2, START, "SL_MISSING", "CRITICAL", "BTCUSDT", SECRET)
    assert addressed(other, [OWNER, GROUP]) == {OWNER: other, GROUP: other}


@pytest.mark.usefixtures("bot")
async def test_alerts_asked_in_a_group_list_it_without_the_strangers_words(telegram, engine):
    listed = AlertView(START, "UNAUTHORIZED", "WARN", "",
                       f"chat 9, user 9. Nothing was executed.\nTheir last message: {SECRET}")
    engine.next_result = CommandResult(True, alerts=[listed])
    in_group = await ask(telegram, "/alerts", chat=GROUP, user=MEMBER)
    assert "UNAUTHORIZED" in in_group.plain and "my-secret-words" not in in_group.plain
    in_private = await ask(telegram, "/alerts", chat=OWNER)
    assert "my-secret-words" in in_private.plain


@pytest.mark.usefixtures("bot")
async def test_logs_asked_in_a_group_show_the_attempt_without_the_strangers_words(telegram,
                                                                                  engine):
    """The gate's warning and the alerter's log line of the alert are in /logs too."""
    engine.next_result = CommandResult(True, logs=[
        LogLine(START, "WARNING", "bot.auth", "unauthorized telegram attempt chat=9 user=9 "
                f"attempts=1 Their last message: {SECRET}"),
        LogLine(START, "WARNING", "trader.alerter", "alert name=UNAUTHORIZED severity=WARN "
                f"symbol=- text=chat 9, user 9. Nothing was executed. | Their last message: "
                f"{SECRET}"),
        LogLine(START, "ERROR", "trader.engine", "something else entirely")])
    in_group = await ask(telegram, "/logs", chat=GROUP, user=MEMBER)
    assert "unauthorized telegram attempt chat=9" in in_group.plain
    assert "Nothing was executed." in in_group.plain and "something else" in in_group.plain
    assert "my-secret-words" not in in_group.plain
    in_private = await ask(telegram, "/logs", chat=OWNER)
    assert "my-secret-words" in in_private.plain
