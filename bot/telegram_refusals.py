"""Telegram's refusal of a message, by what it is about: this text, or this chat.

Telegram explains an unsuccessful request in its `description`; the `error_code` "is also
returned, but its contents are subject to change in the future"
(https://core.telegram.org/bots/api#making-requests). A 400 is not always about the
request: "Bad Request: not enough rights to send text messages to the chat" means an admin
restricted the bot in a group (its `can_send_messages`,
https://core.telegram.org/bots/api#chatpermissions), and on 2023-10-31 Telegram answered it
by mistake to bots everywhere for hours (python-telegram-bot/python-telegram-bot#3956).
Such a chat takes nothing from the bot for now, whatever the text: like a 403 ("bot was
blocked by the user", "bot was kicked"), the message is kept for it and it is tried again
later (bot/blocked_chats.py). A refusal of the text itself ("can't parse entities",
"message is too long", any other words) is answered by sending the text another way.

    if refusal_kind(error) is Refusal.CHAT:
        blocked.refused(chat_id, error)
"""

from enum import StrEnum

from telegram.error import Forbidden, TelegramError


class Refusal(StrEnum):
    TEXT = "text"   # this text can never be sent as it is: send it another way
    CHAT = "chat"   # this chat takes no message from the bot for now: keep it, try later


# Descriptions Telegram gives when the chat cannot receive from the bot (lower case; python-
# telegram-bot drops the "Bad Request: " prefix and changes the case). Collected from
# Telegram's answers as bots met them: https://github.com/TelegramBotAPI/errors (json/).
CHAT_REFUSALS = (
    "not enough rights",            # restricted in a group: "... to send text messages ..."
    "have no rights to send",       # "have no rights to send a message"
    "need administrator rights",    # a channel where the bot may not post
    "have no write access",         # CHAT_WRITE_FORBIDDEN
    "chat_write_forbidden",
    "chat not found",               # never started by the user, not a member, a wrong id
    "peer_id_invalid",
    "group chat was deactivated",
    "bot was blocked", "bot was kicked", "bot is not a member", "user is deactivated",
    "bot can't initiate conversation",
)


def refusal_kind(error: TelegramError) -> Refusal:
    """Whether Telegram refused this text or this chat (a 403 is always the chat)."""
    if isinstance(error, Forbidden):
        return Refusal.CHAT
    words = error.message.lower()
    return Refusal.CHAT if any(phrase in words for phrase in CHAT_REFUSALS) else Refusal.TEXT


def stand_in(plain: str, refused: TelegramError) -> str:
    """A short plain message in place of a text Telegram refused whatever its form: its first
    line, and why; /alerts shows the whole alert. Never empty, far under any limit."""
    first = next((line.strip() for line in plain.splitlines() if line.strip()), "An alert")
    return (f"{first[:200]}\n⚠️ Telegram refused this alert's text ({refused.message[:200]}); "
            "/alerts shows it.")
