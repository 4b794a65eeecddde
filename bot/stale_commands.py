"""Commands that waited while the agent was down: refused, one answer per chat and burst.

Telegram keeps a bot's updates for up to 24 hours (https://core.telegram.org/bots/api#getting-updates),
so after an outage they arrive together, up to 100 per getUpdates. None of them is executed
(README: older than 60 s when it arrives); one reply per chat says so for all the commands of
that chat arriving within `gather` seconds, instead of one reply each: 200 replies would run
into Telegram's flood control (about one message per second in a chat,
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this) and hold
the alerts up behind them.

    stale = StaleCommands(replies)
    await stale.refuse(bot, chat_id, "close", message.date, age)   # answers, or joins an answer
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from telegram import Bot

from bot.format import clock_time, escape, stale_text
from bot.replies import Replies
from trader.display import duration

MAX_NAMED = 8   # commands named in a gathered answer; the rest are counted


@dataclass(frozen=True, slots=True)
class _Stale:
    name: str
    sent_at: datetime
    age: timedelta


class StaleCommands:
    """Per chat, the stale commands of one burst, answered together by the first one."""

    def __init__(self, replies: Replies, gather: float = 0.5) -> None:
        self.replies = replies
        self.gather = gather
        self._waiting: dict[int, list[_Stale]] = {}

    async def refuse(self, bot: Bot, chat_id: int, name: str, sent_at: datetime,
                     age: timedelta) -> None:
        logger.warning("stale telegram command refused command={} chat={} age_s={:.0f}",
                       name, chat_id, age.total_seconds())
        burst = self._waiting.get(chat_id)
        if burst is not None:      # the answer that is being gathered covers this one too
            burst.append(_Stale(name, sent_at, age))
            return
        burst = self._waiting[chat_id] = [_Stale(name, sent_at, age)]
        try:
            await asyncio.sleep(self.gather)
        finally:
            del self._waiting[chat_id]
        await self.replies.send_html(bot, chat_id, stale_answer(burst))


def stale_answer(burst: list[_Stale]) -> str:
    """The one command's answer as before; for several, what they were and when."""
    if len(burst) == 1:
        return stale_text(burst[0].sent_at, burst[0].age)
    ordered = sorted(burst, key=lambda stale: stale.sent_at)
    named = ", ".join(f"/{escape(stale.name)}" for stale in ordered[:MAX_NAMED])
    more = f" and {len(ordered) - MAX_NAMED} more" if len(ordered) > MAX_NAMED else ""
    oldest = max(stale.age for stale in ordered)
    return (f"⏳ {len(ordered)} commands sent between {clock_time(ordered[0].sent_at)} and "
            f"{clock_time(ordered[-1].sent_at)} waited up to {duration(oldest)} while the agent "
            f"was down ({named}{more}); <b>none</b> was executed. Send again what you still want.")
