"""Pinned messages in the fake Bot API: pinChatMessage, unpinChatMessage, and getChat's
`pinned_message`, as Telegram documents them:

- getChat answers a ChatFullInfo, https://core.telegram.org/bots/api#getchat and #chatfullinfo:
  required `id`, `type`, `accent_color_id`, `max_reaction_count`, `accepted_gift_types`
  (#acceptedgifttypes: five booleans); `pinned_message` is optional, "the most recent pinned
  message (by sending date)". A documented-shape example: the getChat fixture of the tgbot
  crate, https://docs.rs/crate/tgbot/0.47.0/source/tests/data/get-chat-channel.json
- pinChatMessage, https://core.telegram.org/bots/api#pinchatmessage: "If the chat is not a
  private chat, the bot must be an administrator in the chat for this to work and must have
  the 'can_pin_messages' administrator right"; returns True. Without the right Telegram
  answers 400 "Bad Request: not enough rights to manage pinned messages in the chat" (as
  reported in https://github.com/teloxide/teloxide/issues/371); an unknown message 400
  "Bad Request: message to pin not found" (Telegram's description, as mapped in
  https://app.unpkg.com/@darkwolf/telegram-bot.lazy.cjs@1.0.1/files/lib/requests/PinChatMessageRequest.js).
- unpinChatMessage, https://core.telegram.org/bots/api#unpinchatmessage: without message_id
  the most recent pinned message is unpinned; returns True.

Messages are the server's own dicts, so getChat shows a pinned message as edited since.
"""

from typing import Any

from tests.fakes.telegram_html import ApiError
from tests.fakes.telegram_objects import chat

NO_RIGHTS = "Bad Request: not enough rights to manage pinned messages in the chat"


class ChatPins:
    """Which messages are pinned in which chat, and the getChat answer that shows them."""

    def __init__(self, messages: dict[tuple[int, int], dict[str, Any]]) -> None:
        self._messages = messages
        self._pinned: dict[int, list[int]] = {}
        self._no_rights: set[int] = set()

    # --- the test API -------------------------------------------------------------------
    def deny(self, chat_id: int) -> None:
        """The bot is no admin with the pin right in this group: pinChatMessage is refused."""
        self._no_rights.add(chat_id)

    def pin(self, chat_id: int, message_id: int) -> None:
        """Pin a message (any sender: a person pins from the app)."""
        if (chat_id, message_id) not in self._messages:
            raise ApiError(400, "Bad Request: message to pin not found")
        pinned = self._pinned.setdefault(chat_id, [])
        if message_id not in pinned:
            pinned.append(message_id)

    def unpin(self, chat_id: int, message_id: int | None = None) -> None:
        top = self.top(chat_id)
        target = message_id if message_id is not None else (top or {}).get("message_id")
        self._pinned[chat_id] = [m for m in self._pinned.get(chat_id, []) if m != target]

    def unpin_all(self, chat_id: int) -> None:
        self._pinned.pop(chat_id, None)

    def top(self, chat_id: int) -> dict[str, Any] | None:
        """The most recent pinned message by sending date (getChat's `pinned_message`)."""
        pinned = [self._messages[(chat_id, m)] for m in self._pinned.get(chat_id, [])]
        return max(pinned, key=lambda m: (m["date"], m["message_id"])) if pinned else None

    # --- the Bot API --------------------------------------------------------------------
    async def pin_chat_message(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        if chat_id < 0 and chat_id in self._no_rights:
            raise ApiError(400, NO_RIGHTS)
        self.pin(chat_id, message_id)
        return True

    async def unpin_chat_message(self, params: dict[str, Any]) -> bool:
        chat_id = int(params["chat_id"])
        if chat_id < 0 and chat_id in self._no_rights:
            raise ApiError(400, NO_RIGHTS)
        message_id = params.get("message_id")
        self.unpin(chat_id, int(message_id) if message_id is not None else None)
        return True

    def chat_full_info(self, chat_id: int) -> dict[str, Any]:
        info: dict[str, Any] = {
            **chat(chat_id), "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                    "unique_gifts": False, "premium_subscription": False,
                                    "gifts_from_channels": False}}
        top = self.top(chat_id)
        if top is not None:
            info["pinned_message"] = top
        return info
