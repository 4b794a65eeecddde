"""Telegram refuses the /chart picture itself (400 "Bad Request: PHOTO_INVALID_DIMENSIONS" or
"Bad Request: IMAGE_PROCESS_FAILED"; photo limits in https://core.telegram.org/bots/api#sendphoto:
"at most 10 MB ... width and height must not exceed 10000 in total. Width and height ratio
must be at most 20"): the operator still gets an answer in text, saying what Telegram said
and what the chart shows, instead of nothing.
"""

from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from tests.fakes.telegram_html import ApiError
from tests.telegram_outside import OutsideTelegram
from tests.test_bot_support import OWNER, RecordingEngine
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


@pytest.mark.parametrize("description", ["Bad Request: PHOTO_INVALID_DIMENSIONS",
                                         "Bad Request: IMAGE_PROCESS_FAILED"])
async def test_a_refused_chart_picture_is_answered_in_text(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine,
        description: str) -> None:
    telegram.photo_error = ApiError(400, description)
    telegram.inject_message(OWNER, OWNER, "/chart")
    reply = await telegram.wait_for(lambda item: item.chat_id == OWNER
                                    and item.method == "sendMessage", timeout=10)
    assert description.split(": ")[1].lower() in (reply.plain or "").lower()
    assert "max drawdown" in (reply.plain or "")      # what the picture would have said
    assert len(telegram.times_of("sendPhoto")) <= 2   # the caption's plain retry at most
