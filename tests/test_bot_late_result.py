"""A command the engine finishes after the bot stopped waiting ("⏳ Still running; /status
shows the outcome") still gets its answer in the chat when it finishes: the result was only
logged, so a /close, /shutdown or a refused /long that ran late left the phone with
"Still running" and nothing after it."""

from bot.app import TelegramBot
from tests.test_bot_support import OWNER, FakeTelegram, RecordingEngine, ask

pytest_plugins = ["tests.test_bot_support"]


async def test_a_result_that_comes_after_still_running_is_sent_when_it_comes(
        bot: TelegramBot, telegram: FakeTelegram, engine: RecordingEngine):
    engine.delay = 6.0            # past the bot's result timeout (5 s in these tests)
    since = len(telegram.sent)
    await ask(telegram, "/wake")
    await telegram.wait_for(lambda item: "Still running" in (item.plain or ""), since=since,
                            timeout=10)
    late = await telegram.wait_for(
        lambda item: item.chat_id == OWNER and "Wake: done" in (item.plain or ""), since=since,
        timeout=10)
    assert late.method == "sendMessage"
