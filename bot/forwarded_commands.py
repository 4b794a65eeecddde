"""Forwarded commands: never run, one answer per chat for a burst of them.

A forwarded command was typed by someone else or at another time, and its Message.date is
the forward's, so the stale rule cannot judge it. Telegram marks it with `forward_origin`
(https://core.telegram.org/bots/api#message). Each one is refused and logged; one line
answers the first of a chat, and the others of the next minute are covered by it: a
forwarded list of twenty commands would otherwise get twenty answers, into Telegram's flood
control (about one message per second in a chat,
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).

    forwarded = ForwardedCommands(replies, clock)
    await forwarded.refuse(bot, chat_id, "/close all")   # answers, or is covered by an answer
"""

from datetime import datetime, timedelta

from loguru import logger
from telegram import Bot

from bot.format import escape
from bot.parsing import command_name
from bot.replies import Replies
from trader.clock import Clock


class ForwardedCommands:
    """Per chat, when a forwarded command was last answered."""

    def __init__(self, replies: Replies, clock: Clock,
                 covered: timedelta = timedelta(minutes=1)) -> None:
        self.replies = replies
        self.clock = clock
        self.covered = covered
        self._answered_at: dict[int, datetime] = {}   # allowed chats only: a handful

    async def refuse(self, bot: Bot, chat_id: int, text: str) -> None:
        name = command_name(text)
        now = self.clock.now()
        last = self._answered_at.get(chat_id)
        answered = last is not None and now - last < self.covered
        logger.warning("forwarded telegram command refused command={} chat={} answered={}",
                       name, chat_id, "earlier" if answered else "now")
        if answered:
            return
        self._answered_at[chat_id] = now    # before the await: a burst's next one sees it
        await self.replies.send_html(
            bot, chat_id, f"↪️ A forwarded /{escape(name)} is <b>not</b> executed (it was "
                          "written by someone else or at another time); type it yourself.",
            keep=False)
