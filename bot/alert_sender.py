"""One part of an alert to one chat, and Telegram's answer to it as a `ChatOutcome`.

    sender = ChatSender(send, blocked_chats, token_trouble, on_migrated)
    outcome = await sender.send_part("db:7", chat_id, html_text, silent=True)

- sent: SENT (a refused token or a blocked chat that was in trouble is logged as over);
- 429 flood control: BLOCKED for this chat until Telegram's `retry_after` has passed
  (https://core.telegram.org/bots/api#responseparameters); the other chats go on;
- a network error, or 401 (the token revoked: every chat alike, bot/trouble_log.py):
  UNREACHABLE, the alert waits in the outbox;
- 400 with `migrate_to_chat_id` (a group became a supergroup): sent there, and from then on;
- the chat takes nothing from the bot for now: 403 (blocked by the user, removed from the
  group) or a 400 about the chat ("not enough rights to send text messages", "chat not
  found": bot/telegram_refusals.py): BLOCKED, kept for it and tried again later
  (bot/blocked_chats.py), and the other chats are told (`on_chat_refused`);
- a 400 about the text ("can't parse entities", "message is too long", any other words): the
  part again as plain text, and if that is refused too, a short stand-in naming the alert
  (/alerts shows it). Even that refused, the chat is what Telegram refuses: BLOCKED.
No alert is given up for a chat by what Telegram said of it (REFUSED is left for a
migration that loops).
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
from bot.telegram_refusals import Refusal, refusal_kind, stand_in
from bot.telegram_text import plain_text
from bot.trouble_log import TroubleLog

SendText = Callable[[int, str, bool, bool], Awaitable[object]]
"""send(chat_id, text, html, silent) -> raises telegram.error.TelegramError when not
delivered. `silent`: Telegram's sendMessage `disable_notification`, "Sends the message
silently. Users will receive a notification with no sound."
(https://core.telegram.org/bots/api#sendmessage)"""


class ChatOutcome(StrEnum):
    SENT = "sent"
    REFUSED = "refused"            # given up for this chat (a group migration that loops)
    BLOCKED = "blocked"            # the chat refuses for now, or 429: kept, tried again later
    UNREACHABLE = "unreachable"


class ChatSender:
    """Sends parts of alerts; remembers where migrated groups went and the last flood wait."""

    def __init__(self, send: SendText, blocked: BlockedChats[Any], token_trouble: TroubleLog,
                 on_migrated: Callable[[int, int], None] | None = None,
                 on_chat_refused: Callable[[int, str], None] | None = None,
                 on_chat_took: Callable[[int], None] | None = None) -> None:
        self.send = send
        self.blocked = blocked
        self.token_trouble = token_trouble
        self.on_migrated = on_migrated
        # (chat, Telegram's words) when a chat begins to refuse the bot: the others are told
        self.on_chat_refused = on_chat_refused
        # (chat) after every part a chat took: it answers again (bot/pinned_state.py)
        self.on_chat_took = on_chat_took
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
            if refusal_kind(exc) is Refusal.CHAT:
                return self._chat_refuses(chat_id, exc)
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
            if refusal_kind(exc) is Refusal.CHAT:
                return self._chat_refuses(chat_id, exc)
            logger.error("telegram refused plain alert alert={} chat={} error={}; sending a "
                         "stand-in", key, chat_id, exc)
            return await self._send_stand_in(key, chat_id, stand_in(text, exc), silent)
        except TelegramError as exc:
            return self._refusal(key, chat_id, exc)
        return self._sent(chat_id)

    async def _send_stand_in(self, key: str, chat_id: int, text: str,
                             silent: bool) -> ChatOutcome:
        """A short plain text in place of one Telegram refused in every form; refused too,
        it is the chat Telegram refuses, whatever its words: kept for it (never dropped)."""
        try:
            await self.send(self.moved.get(chat_id, chat_id), text, False, silent)
        except BadRequest as exc:
            logger.error("telegram refused even a stand-in alert={} chat={} error={}", key,
                         chat_id, exc)
            return self._chat_refuses(chat_id, exc)
        except TelegramError as exc:
            return self._refusal(key, chat_id, exc)
        return self._sent(chat_id)

    def _chat_refuses(self, chat_id: int, exc: TelegramError) -> ChatOutcome:
        """This chat takes nothing from the bot for now: kept for it, tried again later; the
        other chats hear of it when it begins."""
        if self.blocked.refused(chat_id, exc) and self.on_chat_refused is not None:
            self.on_chat_refused(chat_id, exc.message)
        return ChatOutcome.BLOCKED

    def _sent(self, chat_id: int) -> ChatOutcome:
        """Telegram took it: a refused token or a blocked chat is over, if it was one."""
        self.token_trouble.recovered("alerts are delivered again")
        self.blocked.accepted(chat_id)
        if self.on_chat_took is not None:
            self.on_chat_took(chat_id)
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
            return self._chat_refuses(chat_id, exc)
        if isinstance(exc, InvalidToken):
            # 401 for every chat alike: the token was revoked. No chat can be reached, so the
            # alert waits in the outbox (like an outage) instead of being given up. Logged
            # CRITICAL once, then at a slow rate (bot/trouble_log.py), not at every retry.
            self.token_trouble.fail(f"alert={key} error={exc}")
            return ChatOutcome.UNREACHABLE
        if isinstance(exc, NetworkError):  # (BadRequest, its subclass, never comes here)
            logger.warning("telegram unreachable alert={} chat={} error={}", key, chat_id, exc)
            return ChatOutcome.UNREACHABLE
        # Another code (a 409, say): Telegram's answer, with no word on this text, so the
        # chat is kept like one that refuses for now rather than the alert given up.
        logger.error("telegram refused alert alert={} chat={} error={}", key, chat_id, exc)
        return self._chat_refuses(chat_id, exc)
