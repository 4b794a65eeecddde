"""A reply Telegram did not take in time (flood control, 429 retry_after:
https://core.telegram.org/bots/api#responseparameters) is kept as a REPLY alert and
delivered later. It used to go to EVERY allowed chat: an /alerts asked in the owner's private
chat lists an UNAUTHORIZED alert with the stranger's ids and words, which the group then
read, although README promises UNAUTHORIZED goes to the private chats only (review8). A
late reply goes to the chat that asked, only (bot/alert_audience.py).
"""

import asyncio

import pytest

from bot.alert_audience import addressed, reply_key
from storage import Store
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import GROUP, MEMBER, OWNER, START, RecordingEngine
from trader.alerts import OutgoingAlert
from trader.commands import AlertView, CommandResult

pytest_plugins = ["tests.test_bot_support"]
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

SECRET = "psst-my-home-address-is-42-elm-street"
LISTED = AlertView(START, "UNAUTHORIZED", "WARN", "",
                   "Commands from a chat or user that is not allowed: chat 777, user 777, "
                   f"1 attempt. Nothing was executed.\nTheir last message: /close all {SECRET}")


async def outbox_emptied(store: Store) -> None:
    for _ in range(200):
        if not store.pending_alerts():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox was not emptied")


@pytest.mark.usefixtures("bot")
async def test_a_late_alerts_reply_does_not_show_a_strangers_words_to_the_group(
        telegram: FakeTelegram, engine: RecordingEngine, store: Store) -> None:
    engine.next_result = CommandResult(True, alerts=[LISTED])
    # Flood control on the owner's reply long enough for the reply's retries to give up:
    # the reply is kept in the outbox (README: "delivered later like alerts").
    telegram.flood(retry_after=1, times=5)
    telegram.inject_message(OWNER, OWNER, "/alerts")
    late = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and SECRET in (item.plain or ""), timeout=20)
    await outbox_emptied(store)
    assert "Late reply" in (late.plain or "")
    assert [i.plain for i in telegram.sent_to(GROUP) if SECRET in (i.plain or "")] == []
    assert [i.plain for i in telegram.sent_to(GROUP) if "REPLY" in (i.plain or "")] == []


@pytest.mark.usefixtures("bot")
async def test_a_late_reply_asked_in_the_group_goes_to_the_group_only(
        telegram: FakeTelegram, engine: RecordingEngine, store: Store) -> None:
    """Negative of the privacy rule: a late reply still arrives, where it was asked."""
    telegram.flood(retry_after=1, times=5)
    telegram.inject_message(GROUP, MEMBER, "/status")
    late = await telegram.wait_for(lambda item: item.chat_id == GROUP
                                   and "Equity 10,090.12 USDT" in (item.plain or ""), timeout=20)
    await outbox_emptied(store)
    await asyncio.sleep(2.5)        # past any flood wait a copy owed to the owner would have
    assert "Late reply" in (late.plain or "")
    assert [i.plain for i in telegram.sent_to(OWNER) if "Late reply" in (i.plain or "")] == []


def test_the_audience_of_a_late_reply() -> None:
    reply = OutgoingAlert(1, START, "REPLY", "INFO", "", f"Late reply:\n{SECRET}",
                          reply_key(OWNER, "2024-05-01T12:00:00:1"))
    assert addressed(reply, [OWNER, GROUP]) == {OWNER: reply}
    # a REPLY whose chat is unknown is told as UNAUTHORIZED is: private chats only
    unknown = OutgoingAlert(2, START, "REPLY", "INFO", "", "Late reply:\nok", "something")
    assert list(addressed(unknown, [OWNER, GROUP])) == [OWNER]
