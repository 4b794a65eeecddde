"""The bot token revoked while the agent runs (@BotFather /revoke): every Bot API call then
answers 401 {"ok": false, "error_code": 401, "description": "Unauthorized"}
(https://core.telegram.org/bots/api#making-requests). Nothing can reach the operator, so the
alerts stay pending in the outbox (delivered once a valid token answers, e.g. after a restart
on a persistent TRADEBOT_DB) instead of being marked failed, and the process goes on.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from storage import Store
from tests.telegram_outside import OutsideTelegram, settle
from tests.test_bot_support import OWNER, RecordingEngine
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


async def test_alerts_stay_pending_while_the_token_is_refused_and_go_out_once_it_answers(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    good_token = telegram.token
    telegram.token = "1:revoked"
    calls = len(telegram.times_of("sendMessage"))
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT has no stop", "BTCUSDT"), clock.now())
    alerter.publish(Alert(AlertName.FILL, "LONG 0.01 BTCUSDT filled", "BTCUSDT"), clock.now())
    await telegram.wait_for_call("sendMessage", after=calls)
    await settle(0.5)
    assert [alert.name for alert in store.pending_alerts()] == ["SL_MISSING", "FILL"]
    telegram.token = good_token
    await telegram.wait_for(lambda item: "filled" in (item.plain or ""), timeout=10)
    texts = [item.plain or "" for item in telegram.sent_to(OWNER, "sendMessage")]
    assert len(texts) == 2 and "no stop" in texts[0] and "filled" in texts[1], texts


async def test_stop_after_the_token_was_revoked_finishes_every_step(
        telegram: OutsideTelegram, bot: TelegramBot) -> None:
    """python-telegram-bot's polling ends on the 401 and re-raises it when stopped: SIGTERM's
    stop() must still stop the application and close its connections (the agent then
    closes the exchange and the database)."""
    telegram.token = "1:revoked"
    calls = len(telegram.times_of("getUpdates"))
    await telegram.wait_for_call("getUpdates", after=calls, timeout=5)
    await settle(0.3)
    await bot.stop()
    assert not bot.application.running
    assert not bot.connected


async def test_commands_reach_the_agent_again_once_the_token_is_accepted_again(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine) -> None:
    """getUpdates answered 401 (or 404) for a while: polling goes on (python-telegram-bot alone
    ends it for good), and the next command is obeyed once Telegram accepts the token."""
    good_token = telegram.token
    telegram.token = "1:revoked"
    calls = len(telegram.times_of("getUpdates"))
    await telegram.wait_for_call("getUpdates", after=calls + 1, timeout=10)   # polled again
    telegram.token = good_token
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=40)
    assert [command.kind.value for command in engine.received] == ["status"]
