"""What the bot says back: replies, prompts with buttons, photos, edits and button answers.

Every call goes through a retry policy of bot/sending.py (flood control waited out, network
failures retried, bounded). A reply Telegram still did not take is not lost: it becomes a
REPLY alert in the outbox, which bot/delivery.py sends, in order, once Telegram answers again,
to the chat that asked only (bot/alert_audience.py).
HTML that Telegram refuses is sent once more as plain text, like alert delivery does.

    replies = Replies(alerter, clock, RetryPolicy(), RetryPolicy(attempts=3, budget=10))
    sent = await replies.send_html(bot, chat_id, "<b>Equity</b> 10,000 USDT")
"""

import itertools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from loguru import logger
from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.alert_audience import reply_key
from bot.format import escape, plain_text, split_message
from bot.sending import RetryPolicy, call_with_retries, is_transient
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock

NOT_MODIFIED = "message is not modified"   # Telegram's BadRequest for an edit that changes nothing
T = TypeVar("T")


class Replies:
    """Sends the bot's answers with retries; keeps the ones Telegram would not take."""

    def __init__(self, alerter: Alerter, clock: Clock, policy: RetryPolicy,
                 answer_policy: RetryPolicy) -> None:
        self.alerter = alerter
        self.clock = clock
        self.policy = policy
        self.answer_policy = answer_policy
        self._kept = itertools.count(1)

    async def send_html(self, bot: Bot, chat_id: int, text: str,
                        markup: InlineKeyboardMarkup | None = None, *, keep: bool = True,
                        kept_text: str | None = None) -> Message | None:
        """Send `text` in parts under the limit (buttons on the last); the last Message sent.

        None if a part was not sent: with `keep` the unsent rest (or `kept_text`, when the
        reply makes no sense later, like a prompt whose buttons expire) goes to the outbox.
        """
        parts = split_message(text)
        sent: Message | None = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                sent = await self._send_part(bot, chat_id, part, markup if last else None)
            except TelegramError as exc:
                unsent = kept_text or plain_text("\n".join(parts[index:]))
                self._not_sent(chat_id, f"reply part {index + 1}/{len(parts)}", unsent, exc, keep)
                return None
        return sent

    async def send_photo(self, bot: Bot, chat_id: int, png: bytes, caption: str,
                         kept_text: str) -> Message | None:
        """Send a PNG with an HTML caption; None if not sent (then `kept_text` is kept)."""
        try:
            return await self._with_plain_fallback(
                f"photo chat={chat_id} bytes={len(png)}",
                partial(bot.send_photo, chat_id, png, caption=caption, parse_mode=ParseMode.HTML),
                partial(bot.send_photo, chat_id, png, caption=plain_text(caption)))
        except TelegramError as exc:
            if is_transient(exc):
                self._not_sent(chat_id, "photo", kept_text, exc, keep=True)
                return None
            # Telegram refused the picture itself (PHOTO_INVALID_DIMENSIONS, too large ...):
            # sending it again would not help; the operator still gets the words.
            logger.error("telegram refused photo chat={} bytes={} error={!r}; answering in text",
                         chat_id, len(png), exc)
            await self.send_html(bot, chat_id, f"⚠️ Telegram refused the picture "
                                               f"({escape(exc.message)}).\n{caption}")
            return None

    async def edit(self, bot: Bot, chat_id: int, message_id: int, text: str) -> bool:
        """Replace a message's text and drop its buttons; False if Telegram would not."""
        what = f"edit chat={chat_id} message={message_id}"
        edit_html = partial(bot.edit_message_text, text, chat_id, message_id,
                            parse_mode=ParseMode.HTML, reply_markup=None)
        try:
            await self._with_plain_fallback(what, edit_html, partial(
                bot.edit_message_text, plain_text(text), chat_id, message_id, reply_markup=None))
        except TelegramError as exc:
            # Not kept: an edit only updates a prompt; the command's own reply follows anyway.
            logger.warning("telegram edit failed chat={} message={} error={!r}", chat_id,
                           message_id, exc)
            return False
        return True

    async def answer(self, query: CallbackQuery, text: str) -> None:
        """Answer a button press (the toast). An expired query ("query is too old") is a
        BadRequest and is not repeated; nothing is kept, the button's effect is reported."""
        try:
            await call_with_retries(self.answer_policy, f"callback answer query={query.id}",
                                    partial(query.answer, text))
        except TelegramError as exc:
            logger.warning("callback answer failed query={} error={!r}", query.id, exc)

    # --- internals --------------------------------------------------------------------
    async def _send_part(self, bot: Bot, chat_id: int, part: str,
                         markup: InlineKeyboardMarkup | None) -> Message | None:
        return await self._with_plain_fallback(
            f"reply chat={chat_id}",
            partial(bot.send_message, chat_id, part, parse_mode=ParseMode.HTML,
                    reply_markup=markup),
            partial(bot.send_message, chat_id, plain_text(part), reply_markup=markup))

    async def _with_plain_fallback(self, what: str, html_call: Callable[[], Awaitable[T]],
                                   plain_call: Callable[[], Awaitable[T]]) -> T | None:
        """`html_call` with retries; if Telegram refuses it, `plain_call` with retries."""
        try:
            return await call_with_retries(self.policy, what, html_call)
        except BadRequest as exc:
            if NOT_MODIFIED in str(exc).lower():
                return None   # the message already shows exactly this
            logger.error("telegram refused html what={} error={}; sending plain", what, exc)
            return await call_with_retries(self.policy, what, plain_call)

    def _not_sent(self, chat_id: int, what: str, text: str, exc: TelegramError,
                  keep: bool) -> None:
        if not (keep and is_transient(exc)):
            logger.error("telegram did not take {} chat={} error={!r}; not kept", what,
                         chat_id, exc)
            return
        logger.warning("telegram did not take {} chat={} error={!r}; kept in the alert outbox",
                       what, chat_id, exc)
        now = self.clock.now()
        self.alerter.publish(Alert(
            AlertName.REPLY, f"Late reply (Telegram did not take it in time):\n{text}",
            dedup_key=reply_key(chat_id, f"{now.isoformat()}:{next(self._kept)}")), now)
