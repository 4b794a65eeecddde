"""CRITICAL alerts are not starved behind a backlog: after Telegram was unreachable while
FILL chatter piled up, SAVE_STATE_FAILURE and SL_MISSING are delivered first, and every
other alert after them in the order it was published. Through the real python-telegram-bot
and the fake Bot API (502 Bad Gateway while down: https://core.telegram.org/bots/api#making-requests).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import TelegramBot
from storage import Store
from tests.telegram_outside import OutsideTelegram, texts_to
from tests.test_bot_support import OWNER
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


def publish_fills(alerter: Alerter, clock: ManualClock, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        alerter.publish(Alert(AlertName.FILL, f"fill number {index}", "BTCUSDT",
                              dedup_key=f"fill:{index}"), clock.now())
        clock.advance(timedelta(seconds=1))


def fill_numbers(texts: list[str]) -> list[int]:
    return [int(text.split("fill number ")[1].split()[0]) for text in texts if "fill number" in text]


async def test_critical_alerts_go_before_a_backlog_of_fills(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter,
        clock: ManualClock) -> None:
    """120 FILLs (more than one outbox read) wait, then two CRITICAL alerts come: both are
    delivered before any FILL, and the FILLs after them in order, each once."""
    telegram.set_down(True)
    publish_fills(alerter, clock, 120)
    alerter.publish(Alert(AlertName.SAVE_STATE_FAILURE, "disk full"), clock.now())
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT has no stop", "BTCUSDT"), clock.now())
    await asyncio.sleep(0.3)
    telegram.set_down(False)
    await telegram.wait_for(lambda item: "fill number 119" in (item.plain or ""), timeout=30)
    texts = texts_to(telegram, OWNER)
    assert "disk full" in texts[0] and "no stop" in texts[1], texts[:3]
    assert fill_numbers(texts) == list(range(120))


async def test_a_critical_alert_published_during_the_backlog_jumps_the_queue(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    """The backlog is being sent when SL_MISSING comes: it goes out before the FILLs that
    were still waiting, and nothing is sent twice or lost."""
    telegram.set_down(True)
    publish_fills(alerter, clock, 80)
    telegram.set_down(False)
    await telegram.wait_for(lambda item: "fill number 3" in (item.plain or ""), timeout=10)
    alerter.publish(Alert(AlertName.SL_MISSING, "ETHUSDT has no stop", "ETHUSDT"), clock.now())
    await telegram.wait_for(lambda item: "fill number 79" in (item.plain or ""), timeout=30)
    texts = texts_to(telegram, OWNER)
    critical_at = next(index for index, text in enumerate(texts) if "no stop" in text)
    assert critical_at < 10, critical_at
    assert fill_numbers(texts) == list(range(80))
    for _ in range(100):   # the last one is marked sent just after Telegram took it
        if not store.pending_alerts():
            break
        await asyncio.sleep(0.02)
    assert store.pending_alerts() == []
