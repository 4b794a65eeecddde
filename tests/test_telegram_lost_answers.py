"""What the Bot API cannot promise, and what the bot does about it, through the real
python-telegram-bot and the fake Bot API:
- a sendMessage carried out whose answer is lost (connection reset): the Bot API has no
  idempotency key (https://core.telegram.org/bots/api#sendmessage), so the alert is sent
  again: at most one copy more, nothing lost, the order kept;
- 429 on getUpdates: the next poll waits parameters.retry_after
  (https://core.telegram.org/bots/api#responseparameters), commands still arrive;
- a button pressed under a confirmation from before a restart
  (https://core.telegram.org/bots/api#callbackquery): nothing runs, the press is answered.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot, make_alert_sink
from storage import Store
from tests.telegram_outside import OutsideTelegram, settle, texts_to
from tests.test_bot_support import FAST, OWNER, RecordingEngine, bot_settings
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


async def test_an_alert_whose_answer_was_lost_is_sent_at_most_twice_and_in_order(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    telegram.lose_answers("sendMessage")
    alerter.publish(Alert(AlertName.FILL, "first fill", "BTCUSDT", dedup_key="1"), clock.now())
    alerter.publish(Alert(AlertName.FILL, "second fill", "BTCUSDT", dedup_key="2"), clock.now())
    await telegram.wait_for(lambda item: "second fill" in (item.plain or ""), timeout=10)
    await settle(0.5)
    texts = [text for text in texts_to(telegram, OWNER) if "fill" in text]
    assert 1 <= sum("first fill" in text for text in texts) <= 2
    assert sum("second fill" in text for text in texts) == 1
    assert "second fill" in texts[-1]
    assert store.pending_alerts() == []


async def test_flood_control_on_get_updates_is_waited_out_and_commands_still_arrive(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine) -> None:
    calls = len(telegram.times_of("getUpdates"))
    telegram.flood(retry_after=2, method="getUpdates")
    await telegram.wait_for_call("getUpdates", after=calls, timeout=5)   # the refused poll
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=10)
    polls = telegram.times_of("getUpdates")[calls:]
    assert polls[1] - polls[0] >= 2.0
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_a_button_from_before_a_restart_runs_nothing(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine, alerter: Alerter,
        store: Store, clock: ManualClock) -> None:
    telegram.inject_message(OWNER, OWNER, "/close BTCUSDT")
    prompt = await telegram.wait_for(lambda item: bool(item.buttons))
    await bot.stop()
    restarted = make_alert_sink(bot_settings(telegram), engine, alerter, store, clock, FAST)
    assert isinstance(restarted, TelegramBot)
    await restarted.start()
    try:
        [data] = [data for label, data in prompt.buttons if not label.startswith("Cancel")]
        query_id = telegram.press_button(OWNER, OWNER, prompt.message_id or 0, data)
        toast = await telegram.wait_for(lambda item: item.callback_query_id == query_id)
        assert "no longer valid" in (toast.plain or "")
        await settle(0.5)
        assert engine.received == []
    finally:
        await restarted.stop()
