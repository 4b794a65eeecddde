"""Commands reach the agent within seconds of Telegram coming back after an outage.

python-telegram-bot's polling loop sleeps 1, 1.5, 2.25 ... s after each failed getUpdates,
up to 30 s (telegram/ext/_utils/networkloop.py, not configurable): after an outage of a
minute a /close waited up to 30 s more for its next poll. The getUpdates connection now
waits its own backoff (BotTimings.poll_backoff, capped at 5 s by default), which a stop
cuts short. Telegram documents neither the 5xx answers of an outage nor a retry policy
(https://core.telegram.org/bots/api#making-requests only describes "ok": false answers),
so both outages are played: a Bad Gateway answer and a connection closed without one.
Flood control on getUpdates (429, parameters.retry_after) is still waited out in full
(tests/test_telegram_lost_answers.py).
"""

import time
from collections.abc import AsyncIterator

import pytest

from bot.app import TelegramBot
from tests.telegram_outside import OutsideTelegram, settle
from tests.test_bot_support import OWNER, RecordingEngine
from trader.clock import ManualClock

pytest_plugins = ["tests.test_bot_support"]

# Long enough for python-telegram-bot's own backoff to be in a 5 s sleep when it ends
# (1 + 1.5 + 2.25 + 3.4 = 8.1 s of sleeps, then 5.1 s); the tests' poll backoff caps at 0.5 s.
OUTAGE_SECONDS = 9.0


@pytest.fixture
async def telegram(clock: ManualClock) -> AsyncIterator[OutsideTelegram]:
    async with OutsideTelegram(now=clock.now) as fake:
        yield fake


@pytest.mark.parametrize("mode", ["502", "drop"])
async def test_a_command_after_an_outage_is_polled_at_once(
        telegram: OutsideTelegram, bot: TelegramBot, engine: RecordingEngine, mode: str) -> None:
    calls = len(telegram.times_of("getUpdates"))
    await telegram.wait_for_call("getUpdates", after=calls, timeout=5)
    telegram.set_down(True, mode)
    await settle(OUTAGE_SECONDS)
    telegram.set_down(False)
    back = time.monotonic()
    telegram.inject_message(OWNER, OWNER, "/status")
    await telegram.wait_for(lambda item: "equity" in (item.plain or "").lower(), timeout=20)
    first_poll_after = min(at for at in telegram.times_of("getUpdates") if at >= back)
    # The answer's own time does not count: only the wait for the next poll.
    assert first_poll_after - back < 2.0, f"next getUpdates {first_poll_after - back:.1f} s after"
    assert [command.kind.value for command in engine.received] == ["status"]


async def test_the_outage_is_not_polled_in_a_tight_loop(
        telegram: OutsideTelegram, bot: TelegramBot) -> None:
    """The negative: failures still back off (tests cap it at 0.5 s: 0.05, 0.1, 0.2, 0.4, 0.5
    ...), rather than a poll at once after each failed one."""
    calls = len(telegram.times_of("getUpdates"))
    await telegram.wait_for_call("getUpdates", after=calls, timeout=5)
    telegram.set_down(True, "502")
    start = len(telegram.times_of("getUpdates"))
    await settle(3.0)
    telegram.set_down(False)
    polls = len(telegram.times_of("getUpdates")) - start
    assert 3 <= polls <= 12, polls


async def test_stop_during_an_outage_does_not_wait_for_the_backoff(
        telegram: OutsideTelegram, bot: TelegramBot) -> None:
    telegram.set_down(True, "502")
    await settle(OUTAGE_SECONDS)
    started = time.monotonic()
    await bot.stop()
    assert time.monotonic() - started < 1.5
    assert not bot.application.running
