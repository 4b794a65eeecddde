"""400 "Bad Request: can't parse entities" for an alert's HTML (https://core.telegram.org/bots/api#formatting-options:
the bot's markup is Telegram's to judge): the alert goes again as plain text, part by part,
each part under the 4096-character limit as Telegram counts it (UTF-16 units,
https://core.telegram.org/bots/api#sendmessage), the whole text once, nothing cut off.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from bot.telegram_text import utf16_length
from storage import Store
from tests.telegram_outside import OutsideTelegram, settle
from tests.test_bot_support import OWNER
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


async def test_a_long_alert_refused_as_html_arrives_whole_as_plain_parts(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock) -> None:
    lines = [f"line {n:03d} 📉 <BTC&USDT> dropped" for n in range(200)]    # ~6,600 UTF-16 units
    telegram.refuse_html(times=50)
    alerter.publish(Alert(AlertName.ERROR, "\n".join(lines), "BTCUSDT"), clock.now())
    await telegram.wait_for(lambda item: "line 199" in (item.plain or ""), timeout=10)
    for _ in range(250):    # the group's parts (refused as HTML, then plain) come after
        if not store.pending_alerts():
            break
        await settle(0.02)
    parts = [item.plain or "" for item in telegram.sent_to(OWNER, "sendMessage")]
    assert all(utf16_length(part) <= 4096 for part in parts)
    shown = "\n".join(parts)
    assert all(shown.count(line) == 1 for line in lines), [len(parts)]
    assert store.pending_alerts() == []
