"""A token revoked mid-run (every Bot API call answers 401 {"ok": false, "error_code": 401,
"description": "Unauthorized"}, https://core.telegram.org/bots/api#making-requests) is one
trouble: one CRITICAL log line when it begins, not one per getUpdates retry and per alert
delivery pass; a reminder at a slow rate while it lasts; one line when Telegram accepts the
token again. Through the real python-telegram-bot and the fake Bot API.
"""

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.app import TelegramBot
from bot.trouble_log import TroubleLog
from storage import Store
from tests.log_capture import logged
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


@pytest.fixture
def critical() -> Iterator[list[str]]:
    """The CRITICAL messages logged during the test."""
    with logged("CRITICAL") as lines:
        yield lines


@pytest.fixture
def warnings_and_worse() -> Iterator[list[str]]:
    with logged("WARNING") as lines:
        yield lines


def about_the_token(lines: list[str]) -> list[str]:
    return [line for line in lines if "TELEGRAM_BOT_TOKEN" in line]


async def test_a_revoked_token_is_logged_critical_once_and_its_end_is_logged(
        telegram: OutsideTelegram, bot: TelegramBot, alerter: Alerter, store: Store,
        clock: ManualClock, critical: list[str], warnings_and_worse: list[str]) -> None:
    good_token = telegram.token
    telegram.token = "1:revoked"
    sends, polls = len(telegram.times_of("sendMessage")), len(telegram.times_of("getUpdates"))
    alerter.publish(Alert(AlertName.SL_MISSING, "BTCUSDT has no stop", "BTCUSDT"), clock.now())
    await telegram.wait_for_call("sendMessage", after=sends + 3, timeout=10)   # retried 4 times
    await telegram.wait_for_call("getUpdates", after=polls + 1, timeout=10)    # polled twice
    assert len(about_the_token(critical)) == 1, about_the_token(critical)
    telegram.token = good_token
    await telegram.wait_for(lambda item: item.chat_id == OWNER and "no stop" in (item.plain or ""),
                            timeout=10)
    await settle(0.3)
    [ended] = [line for line in about_the_token(warnings_and_worse) if "ended after" in line]
    assert "delivered again" in ended or "reach the agent again" in ended
    assert len(about_the_token(critical)) == 1


def test_a_trouble_that_lasts_is_reminded_at_the_slow_rate_and_a_new_one_logged_again(
        critical: list[str], warnings_and_worse: list[str]) -> None:
    moment = [0.0]
    trouble = TroubleLog("telegram refuses TELEGRAM_BOT_TOKEN", remind_every=900,
                         now=lambda: moment[0])
    for _ in range(30):                      # a retry every 30 s for 15 minutes
        trouble.fail("getUpdates answered 401")
        moment[0] += 30
    trouble.fail("getUpdates answered 401")  # 15 min after the first: the reminder
    assert len(critical) == 2 and "still, for 15 min" in critical[1] and "30 more" in critical[1]
    trouble.recovered("alerts are delivered again")
    trouble.recovered("alerts are delivered again")     # said once
    assert len([line for line in warnings_and_worse if "ended after 15 min" in line]) == 1
    trouble.fail("getUpdates answered 401")  # a new trouble: its first line again
    assert len(critical) == 3
