"""What Telegram marks as the command in a message, and what the bot answers.

Telegram's `bot_command` entity (https://core.telegram.org/bots/api#messageentity, e.g.
"/start@jobs_bot") covers the command's letters, digits and underscores
(https://core.telegram.org/bots/api#botcommand: "only lowercase English letters, digits and
underscores"), so "/status." arrives with an entity of "/status", and python-telegram-bot
routes it to /status. The bot read the name again from the raw first word ("status."): a
KeyError in the handler and no answer at all. The docs do not say how long the entity is
for punctuation glued to a command, so both lengths are tested (the fake marks the first
word unless told otherwise).
"""

import pytest

from tests.fakes.telegram_objects import chat, user
from tests.fakes.telegram_server import FakeTelegram
from tests.test_bot_support import OWNER, RecordingEngine, ask

pytest_plugins = ["tests.test_bot_support"]
pytestmark = [pytest.mark.usefixtures("bot"),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]


def with_entity(telegram: FakeTelegram, text: str, marked: str) -> None:
    """`text` sent with a bot_command entity over its first `len(marked)` characters."""
    telegram._push_update({"message": {
        "message_id": telegram._new_message_id(), "date": int(telegram.now().timestamp()),
        "chat": chat(OWNER), "from": user(OWNER), "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(marked)}]}})


@pytest.mark.parametrize(("text", "marked", "expected"), [
    ("/status.", "/status", "Equity"),                 # Telegram's entity: the status
    ("/status.", "/status.", "Unknown command"),       # the whole word marked
    ("/pnl?", "/pnl", "PnL"),
    ("/close-all", "/close", "name one symbol or all"),
])
async def test_a_command_with_punctuation_glued_on_is_answered(
        telegram: FakeTelegram, engine: RecordingEngine, text: str, marked: str,
        expected: str) -> None:
    since = len(telegram.sent)
    with_entity(telegram, text, marked)
    reply = await telegram.wait_for(lambda item: item.chat_id == OWNER, since=since, timeout=5)
    assert expected.lower() in reply.plain.lower(), reply.plain


async def test_start_from_a_deep_link_answers_as_start(telegram: FakeTelegram,
                                                       engine: RecordingEngine) -> None:
    """t.me/<bot>?start=<payload> sends "/start <payload>"
    (https://core.telegram.org/bots/features#deep-linking): the short status and the list,
    not "/start takes no arguments"."""
    reply = await ask(telegram, "/start from-the-setup-guide")
    assert "tradebot commands" in reply.plain, reply.plain


async def test_other_commands_still_refuse_extra_words(telegram: FakeTelegram,
                                                       engine: RecordingEngine) -> None:
    reply = await ask(telegram, "/help me")
    assert "takes no arguments" in reply.plain, reply.plain
