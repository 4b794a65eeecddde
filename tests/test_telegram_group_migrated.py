"""An allowed group upgraded to a supergroup (Telegram does it when a group gets certain
settings) gets a new chat id: sending to the old one answers 400 with
parameters.migrate_to_chat_id (https://core.telegram.org/bots/api#responseparameters).
The alerts then go to the new id (none lost), its allowed members' commands are obeyed there,
and the owner is told to put the new id in TELEGRAM_ALLOWED_CHAT_IDS.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from storage import Store
from tests.telegram_outside import OutsideTelegram, settle, texts_to
from tests.test_bot_support import GROUP, MEMBER, OWNER, RecordingEngine
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock
from trader.operator_intent import OperatorIntent

pytest_plugins = ["tests.test_bot_support"]
SUPERGROUP = -1001234567890


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


async def test_alerts_follow_a_group_that_became_a_supergroup(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    telegram.migrate(GROUP, SUPERGROUP)
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT has no stop", "BTCUSDT"), clock.now())
    await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP
                            and "no stop" in (item.plain or ""), timeout=10)
    told = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                   and str(SUPERGROUP) in (item.plain or ""), timeout=10)
    assert "TELEGRAM_ALLOWED_CHAT_IDS" in (told.plain or "")
    clock.advance(1)
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 filled", "BTCUSDT"), clock.now())
    await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP
                            and "filled" in (item.plain or ""), timeout=10)
    await settle(0.3)
    assert len([text for text in texts_to(telegram, SUPERGROUP) if "no stop" in text]) == 1
    assert store.pending_alerts() == []


async def test_commands_from_the_supergroup_of_an_allowed_group_are_obeyed_once_known(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine, alerter: Alerter,
        clock: ManualClock) -> None:
    telegram.migrate(GROUP, SUPERGROUP)
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 filled", "BTCUSDT"), clock.now())
    await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP, timeout=10)
    telegram.inject_message(SUPERGROUP, MEMBER, "/status")
    await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP
                            and "equity" in (item.plain or "").lower(), timeout=10)
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_the_owner_is_obeyed_in_the_supergroup_from_the_first_command(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine) -> None:
    """Telegram announces the new id at once (the service messages); the bot learnt it only
    from a 400 on its next send, so until an alert happened to go, the owner's /status there
    was refused ("This bot only answers its owner.") and their own group reported as a
    stranger (review 8)."""
    telegram.migrate(GROUP, SUPERGROUP, announced=True)
    telegram.inject_message(SUPERGROUP, MEMBER, "/status")
    await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP
                            and "equity" in (item.plain or "").lower(), timeout=10)
    assert [command.kind.value for command in engine.received] == ["status"]
    assert not any("only answers its owner" in (item.plain or "") for item in telegram.sent)


async def test_a_migration_service_message_of_a_group_not_allowed_changes_nothing(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine) -> None:
    telegram.migrate(-4242, SUPERGROUP, announced=True)
    telegram.inject_message(SUPERGROUP, MEMBER, "/status")
    reply = await telegram.wait_for(lambda item: item.chat_id == SUPERGROUP, timeout=10)
    assert "only answers its owner" in (reply.plain or ""), reply.plain
    assert engine.received == []


async def test_the_pinned_state_follows_the_supergroup(
        telegram: OutsideTelegram, bot: TelegramBot, clock: ManualClock) -> None:
    """The sleep/pause pin is read from and written to the supergroup (getChat on the old id
    answers the same 400 with migrate_to_chat_id), with no 'cannot pin' alert."""
    telegram.migrate(GROUP, SUPERGROUP)
    asleep = OperatorIntent(asleep=True, since=clock.now())
    await bot.intent_pin.publish(asleep)
    assert OperatorIntent.from_line(str((telegram.pins.top(SUPERGROUP) or {}).get("text")))
    [found_owner, found_group] = await bot.intent_pin.recall()
    assert found_group.asleep and found_owner.asleep
    await settle(0.3)
    assert not [text for text in texts_to(telegram, OWNER) if "Cannot keep" in text]
