"""/health with words after it: every other command without arguments answers "/status
takes no arguments. Usage: /status" (bot/parsing.py), but /health (a handler of its own,
bot/health_reply.py) ignored them and answered as if they were not there. Found by the
outside judge trying every README command with extra arguments."""

from bot.app import TelegramBot, make_alert_sink
from tests.test_bot_support import FAST, ask
from tests.test_health import monitor, presence, telegram, telegram_settings, ticked, world  # noqa: F401
from trader.clock import SystemClock


async def test_health_with_an_argument_answers_its_usage(world, telegram, monitor, presence):  # noqa: F811
    ticked(presence, 2)
    bot = make_alert_sink(telegram_settings(telegram), world.controller, world.engine.alerter,
                          world.store, SystemClock(), FAST, health=monitor.view)
    assert isinstance(bot, TelegramBot)
    await bot.start()
    try:
        reply = await ask(telegram, "/health now")
        assert reply.plain == "/health takes no arguments. Usage: /health", reply.plain
        reply = await ask(telegram, "/health")
        assert reply.plain.startswith("✅ Healthy"), reply.plain
    finally:
        await bot.stop()
