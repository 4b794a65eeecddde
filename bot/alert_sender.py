"""One part of an alert to one chat, and Telegram's answer to it as a `ChatOutcome`.

    sender = ChatSender(send, blocked_chats, token_trouble, on_migrated)
    outcome = await sender.send_part("db:7", chat_id, html_text, silent=True)

- sent: SENT (a refused token or a blocked chat that was in trouble is logged as over);
- 429 flood control: BLOCKED for this chat until Telegram's `retry_after` has passed
  (https://core.telegram.org/bots/api#responseparameters); the other chats go on;
- a network error, or 401 (the token revoked: every chat alike, bot/trouble_log.py):
  UNREACHABLE, the alert waits in the outbox;
- 400 "can't parse entities": the part again as plain text;
- 400 with `migrate_to_chat_id` (a group became a supergroup): sent there, and from then on;
- 403 (blocked by the user, removed from the group): BLOCKED, bot/blocked_chats.py;
- any other refusal (400 "chat not found"): REFUSED, given up for this chat.
"""

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from loguru import logger
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.blocked_chats import BlockedChats
from bot.sending import retry_after_seconds
from bot.telegram_text import plain_text
from bot.trouble_log import TroubleLog

SendText = Callable[[int, str, bool, bool], Awaitable[object]]
"""send(chat_id, text, html, silent) -> raises telegram.error.TelegramError when not
delivered. `silent`: Telegram's sendMessage `disable_notification`, "Sends the message
silently. Users will receive a notification with no sound."
(https://core.telegram.org/bots/api#sendmessage)"""


class ChatOutcome(StrEnum):
    SENT = "sent"
    REFUSED = "refused"            # Telegram answered "no" for this chat for good (not found)
    BLOCKED = "blocked"            # 403 or 429 for this chat: kept for it, tried again later
    UNREACHABLE = "unreachable"


class ChatSender:
    """Sends parts of alerts; remembers where migrated groups went and the last flood wait."""

    def __init__(self, send: SendText, blocked: BlockedChats[Any], token_trouble: TroubleLog,
                 on_migrated: Callable[[int, int], None] | None = None) -> None:
        self.send = send
        self.blocked = blocked
        self.token_trouble = token_trouble
        self.on_migrated = on_migrated
        # A group that became a supergroup: configured id -> the id Telegram gave instead.
        self.moved: dict[int, int] = {}

    async def send_part(self, key: str, chat_id: int, text: str, silent: bool) -> ChatOutcome:
        """One part of alert `key` to one chat; Telegram's answer as a ChatOutcome."""
        target = self.moved.get(chat_id, chat_id)
        try:
            await self.send(target, text, True, silent)
        except ChatMigrated as exc:
            if exc.new_chat_id == target:   # Telegram contradicting itself: give this chat up
                logger.error("telegram migration loop alert={} chat={}", key, chat_id)
                return ChatOutcome.REFUSED
            self._follow_migration(chat_id, exc.new_chat_id)
            return await self.send_part(key, chat_id, text, silent)
        except BadRequest as exc:
            logger.error("telegram refused alert html alert={} chat={} error={}; sending plain",
                         key, chat_id, exc)
            return await self._send_plain(key, chat_id, plain_text(text), silent)
        except TelegramError as exc:
            return self._refusal(key, chat_id, exc)
        return self._sent(chat_id)

    def _follow_migration(self, chat_id: int, new_chat_id: int) -> None:
        logger.warning("telegram group became a supergroup chat={} new_chat={}; alerts follow",
                       chat_id, new_chat_id)
        self.moved[chat_id] = new_chat_id
        if self.on_migrated is not None:
            self.on_migrated(chat_id, new_chat_id)

    async def _send_plain(self, key: str, chat_id: int, text: str,
                          silent: bool) -> ChatOutcome:
        """This part again as the plain text it shows (never longer than the HTML part)."""
        try:
            await self.send(self.moved.get(chat_id, chat_id), text, False, silent)
        except BadRequest as exc:   # before NetworkError, its parent class
            logger.error("telegram refused plain alert alert={} chat={} error={}", key,
                         chat_id, exc)
            return ChatOutcome.REFUSED
        except TelegramError as exc:
            return self._refusal(key, chat_id, exc)
        return self._sent(chat_id)

    def _sent(self, chat_id: int) -> ChatOutcome:
        """Telegram took it: a refused token or a blocked chat is over, if it was one."""
        self.token_trouble.recovered("alerts are delivered again")
        self.blocked.accepted(chat_id)
        return ChatOutcome.SENT

    def _refusal(self, key: str, chat_id: int, exc: TelegramError) -> ChatOutcome:
        """Telegram's "no" (other than a 400) as what delivery does next."""
        if isinstance(exc, RetryAfter):    # this chat only (bot/sending.py FloodGate says why)
            wait = retry_after_seconds(exc)
            logger.warning("telegram flood control alert={} chat={} retry_after_s={}", key,
                           chat_id, wait)
            self.blocked.hold(chat_id, wait)
            return ChatOutcome.BLOCKED
        if isinstance(exc, Forbidden):     # 403: blocked by the user, removed from the group
            self.blocked.refused(chat_id, exc)
            return ChatOutcome.BLOCKED
        if isinstance(exc, InvalidToken):
            # 401 for every chat alike: the token was revoked. No chat can be reached, so the
            # alert waits in the outbox (like an outage) instead of being given up. Logged
            # CRITICAL once, then at a slow rate (bot/trouble_log.py), not at every retry.
            self.token_trouble.fail(f"alert={key} error={exc}")
            return ChatOutcome.UNREACHABLE
        if isinstance(exc, NetworkError):  # (BadRequest, its subclass, never comes here)
            logger.warning("telegram unreachable alert={} chat={} error={}", key, chat_id, exc)
            return ChatOutcome.UNREACHABLE
        logger.error("telegram refused alert alert={} chat={} error={}", key, chat_id, exc)
        return ChatOutcome.REFUSED
