"""409 Conflict on getUpdates: another process polls with the same bot token ("terminated by
other getUpdates request"), or a webhook is set on it (getUpdates "will not work if an
outgoing webhook is set up", https://core.telegram.org/bots/api#getupdates). Commands may
then not reach this agent: the owner is told (once, throttled like any repeated alert), the
bot keeps polling, and commands are obeyed again once the other poller is gone.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OTHER_POLLER, WEBHOOK_ACTIVE, OutsideTelegram, settle
from tests.test_bot_support import OWNER, RecordingEngine
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def conflict_alerts(telegram: OutsideTelegram) -> list[str]:
    return [item.plain or "" for item in telegram.sent_to(OWNER, "sendMessage")
            if "getUpdates" in (item.plain or "")]


@pytest.mark.parametrize(("description", "cause"), [(OTHER_POLLER, "another process"),
                                                    (WEBHOOK_ACTIVE, "webhook is set")])
async def test_a_conflict_on_get_updates_is_told_to_the_owner_once(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine,
        description: str, cause: str) -> None:
    telegram.get_updates_error = ApiError(409, description)
    await telegram.wait_for(lambda item: "getUpdates" in (item.plain or ""), timeout=15)
    await settle(2.0)    # python-telegram-bot polls again after 1, then 1.5 s
    [alert] = conflict_alerts(telegram)
    assert cause in alert
    telegram.get_updates_error = None
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=40)
    assert [command.kind.value for command in engine.received] == ["status"]
