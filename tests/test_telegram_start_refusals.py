"""An answer at start that is neither "unreachable" nor "wrong token": the agent must not die
of it. Telegram answers 400/403/409/500 with the error envelope of
https://core.telegram.org/bots/api#making-requests; python-telegram-bot raises BadRequest,
Forbidden, Conflict or NetworkError. The bot keeps connecting in the background (like an
outage at start) and obeys commands once Telegram lets it poll.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot, make_alert_sink
from storage import Store
from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OutsideTelegram
from tests.test_bot_support import FAST, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


@pytest.mark.parametrize(("method", "error"), [
    ("deleteWebhook", ApiError(400, "Bad Request: unexpected parameter")),
    ("deleteWebhook", ApiError(409, "Conflict: terminated by setWebhook request")),
    ("getMe", ApiError(403, "Forbidden: bot is not allowed here")),
])
async def test_a_refusal_at_start_does_not_end_the_agent(
        telegram: OutsideTelegram, engine: RecordingEngine, alerter: Alerter, store: Store,
        clock: ManualClock, method: str, error: ApiError) -> None:
    telegram.fail(method, error)
    bot = make_alert_sink(bot_settings(telegram), engine, alerter, store, clock, FAST)
    assert isinstance(bot, TelegramBot)
    try:
        await bot.start()
        telegram.inject_message(OWNER, OWNER, "/status")
        await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=10)
        assert [command.kind.value for command in engine.received] == ["status"]
    finally:
        await bot.stop()
