"""Telegram's objects as the fake Bot API builds them, and the record of what the bot sent.

Field names and which fields are required follow https://core.telegram.org/bots/api#user,
#chat, #message and #photosize (checked against Telegram's example updates in
tests/test_bot_fake_telegram.py).
"""

import struct
from dataclasses import dataclass
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class SentItem:
    """One thing the bot did in a chat. `text` is the message text, the photo caption or the
    callback answer; `plain` is that text as the user sees it (HTML parsed)."""
    method: str
    chat_id: int | None
    text: str | None = None
    plain: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    message_id: int | None = None
    callback_query_id: str | None = None
    disable_notification: bool = False    # sendMessage: delivered without sound

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(button["text"], button.get("callback_data", "")) for row in rows for button in row]


def user(user_id: int) -> dict[str, Any]:
    """A person (User: id, is_bot and first_name are required)."""
    return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}


def bot_user(token: str, username: str) -> dict[str, Any]:
    """The bot as messages show it (the part of a bot token before ':' is the bot's id)."""
    return {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "tradebot",
            "username": username}


def bot_me(bot: dict[str, Any]) -> dict[str, Any]:
    """getMe's answer: the bot plus the fields "Returned only in getMe"."""
    return {**bot, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}


def chat(chat_id: int) -> dict[str, Any]:
    """A private chat (id = the user's id) or, for negative ids, a supergroup."""
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": f"group {chat_id}"}
    return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}


def photo_sizes(png: bytes, file_id: str) -> list[dict[str, Any]]:
    """The PhotoSize list of a sent PNG (one size: the fake does not rescale)."""
    width, height = (0, 0)
    if len(png) >= 24 and png.startswith(PNG_SIGNATURE):
        width, height = struct.unpack(">II", png[16:24])
    return [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": width,
             "height": height, "file_size": len(png)}]
