"""Telegram down at boot, then back: the bot connects and the pinned state is read within
seconds, not after backoffs grown through the outage (review rv15, s05: the pin said
PAUSED and "ASLEEP (assumed)" was still not corrected a minute later).

The bot's getMe is retried with the production backoff (BotTimings' default: capped at 5 s,
README "within ~5 s"); the pin read waits for no backoff of its own once getMe answers. A
429 is still waited out in full: Telegram's "parameters.retry_after" (https://core.telegram.
org/bots/api#responseparameters; FloodAwareWait, tests/test_bot_flood.py). The real
python-telegram-bot against the fake Bot API, the real AgentServices wiring."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import BotTimings, TelegramBot, make_alert_sink
from tests.engine_world import SYMBOL, World, make_world
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import FAST, OWNER
from tests.test_operator_intent import telegram_bot_message_pinned
from trader.agent_services import AgentServices
from trader.clock import SystemClock
from trader.config import load_settings
from trader.intent_keeper import IntentKeeper, PinUnavailable
from trader.operator_intent import OperatorIntent

OUTAGE_SECONDS = 12.0
PROMPT = 6.0          # the connect backoff's cap (5 s) and a second for the reads


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def world(tmp_path: Path) -> World:
    world = await make_world(tmp_path)
    await world.warm_up()
    return world


async def eventually(condition, bound: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_the_pin_is_read_within_seconds_of_telegram_coming_back(world, telegram):
    paused = OperatorIntent(paused=True, since=datetime(2024, 1, 1, tzinfo=UTC))
    await telegram_bot_message_pinned(telegram, paused)
    settings = load_settings(_env_file=None, telegram_bot_token=telegram.token,
                             telegram_allowed_chat_ids=str(OWNER),
                             telegram_api_url=telegram.api_url, symbols=SYMBOL)
    timings = replace(FAST, connect_backoff=BotTimings().connect_backoff)   # production's
    bot = make_alert_sink(settings, world.controller, world.engine.alerter, world.store,
                          SystemClock(), timings)
    assert isinstance(bot, TelegramBot)
    services = AgentServices(settings, world.engine, replay=False)
    telegram.set_down(True, "drop")
    await services.start(bot)
    await bot.start()
    world.engine.load_state()
    try:
        assert "ASLEEP (assumed)" in await services.recover_intent(wait=0.5)
        await asyncio.sleep(OUTAGE_SECONDS)        # the outage itself, not a wait for timing
        telegram.set_down(False)
        back = time.monotonic()
        keeper = services.keeper
        assert keeper is not None
        await eventually(lambda: bot.connected, PROMPT)
        await eventually(lambda: keeper.late_pin_waiting, 1.0)   # at once, no backoff of its own
        assert time.monotonic() - back < PROMPT
        services.between_ticks()                    # the engine's loop applies it
        state = world.engine.guard_state
        assert state.paused and not state.asleep, state
    finally:
        await services.stop()
        await bot.stop()


class PinBehindOutage:
    """An IntentPin (trader/intent_keeper.py) whose reads fail until Telegram is back, as
    bot/pinned_state.py's do while the bot is not connected."""

    def __init__(self) -> None:
        self.back = False
        self.reads = 0

    async def recall(self) -> list[OperatorIntent]:
        self.reads += 1
        if not self.back:
            raise PinUnavailable("telegram not connected yet")
        return [OperatorIntent(paused=True, since=datetime(2024, 1, 1, tzinfo=UTC))]

    async def publish(self, intent: OperatorIntent) -> None:
        return None


async def test_getme_answering_cuts_the_pin_reads_backoff_short(world):
    """After a long outage the pin read's own backoff has grown (here 30 s already); the
    bot's connection (`TelegramBot.on_connected`, wired by AgentServices) reads it now."""
    pin = PinBehindOutage()
    keeper = IntentKeeper(world.engine.guards, world.store, world.engine.alerter,
                          SystemClock(), pin, retry=(30.0, 60.0))
    keeper.start()
    try:
        await eventually(lambda: pin.reads == 1, 2.0)       # failed: now in its 30 s wait
        pin.back = True
        keeper.telegram_answered()
        await eventually(lambda: pin.reads == 2, 1.0)
    finally:
        await keeper.stop()
