"""Chats that refuse the bot for now (403 Forbidden: "bot was blocked by the user", "bot was
kicked from the group chat"; 400 "not enough rights to send text messages to the chat",
"chat not found": bot/telegram_refusals.py): their alerts are kept, Telegram is asked again at a slow rate,
and once the chat takes messages again it gets what it missed, CRITICAL first. A chat under
flood control (429) is held the same way for Telegram's `retry_after`, without the trouble
log (bot/sending.py FloodGate: why per chat).

A 403 is Telegram's answer for this chat only (https://core.telegram.org/bots/api#making-requests
gives the error envelope; the descriptions are Telegram's, e.g. "Forbidden: bot was blocked by
the user"). It can end: the user unblocks the bot, the group adds it back or gives it back
its right to send, the owner presses Start. So an alert is not given up for such a chat:
- delivered to another allowed chat: the outbox marks it sent, and this chat is owed it (in
  memory: after a restart a blocked chat only gets what is still pending);
- delivered nowhere: it stays pending in the outbox, like during an outage.
The chat is asked again every `retry_every` seconds (one send, not one per alert or per
pass); its trouble is logged CRITICAL once, reminded slowly, and its end logged
(bot/trouble_log.py).

    blocked = BlockedChats(retry_every=300)
    blocked.refused(chat_id, error)        # a 403: logged once, next try in 5 min
    blocked.hold(chat_id, retry_after)     # a 429: next try when Telegram's wait is over
    blocked.try_soon(chat_id)              # the chat wrote to the bot: unblocked, try now
    if blocked.waiting(chat_id): ...       # not now: keep the alert for it
    blocked.owe(chat_id, item)             # delivered elsewhere: this chat gets it later
    blocked.accepted(chat_id)              # a send went through: the owed ones follow
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from loguru import logger

from bot.trouble_log import TroubleLog

RETRY_EVERY = 300.0    # seconds between two tries of a chat that refused the bot
MAX_OWED = 500         # alerts kept per blocked chat (the oldest go first beyond that)

T = TypeVar("T")


@dataclass
class _Blocked(Generic[T]):
    log: TroubleLog
    next_try: float = 0.0
    owed: list[T] = field(default_factory=list)


class BlockedChats(Generic[T]):
    """Per chat that answered 403 (or 429): when to try it again and the alerts it is owed."""

    def __init__(self, retry_every: float = RETRY_EVERY,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.retry_every = retry_every
        self.now = now
        self._chats: dict[int, _Blocked[T]] = {}

    def refused(self, chat_id: int, error: object) -> bool:
        """Telegram refused this chat (a 403, or a 400 about the chat: bot/telegram_refusals.py):
        wait `retry_every` before the next try. True when the trouble begins (it was taking
        messages until now)."""
        chat = self._chat(chat_id)
        begins = not chat.log.failing
        chat.next_try = self.now() + self.retry_every
        chat.log.fail(f"error={error}")
        return begins

    def hold(self, chat_id: int, seconds: float) -> None:
        """Flood control (429) for this chat: not tried again for `seconds` (no trouble
        logged: a wait Telegram asked for is no fault; the caller logs it)."""
        chat = self._chat(chat_id)
        chat.next_try = max(chat.next_try, self.now() + seconds)

    def next_try_in(self) -> float | None:
        """Seconds until the next chat kept waiting may be tried again (None: none waits)."""
        now = self.now()
        ahead = [chat.next_try - now for chat in self._chats.values() if chat.next_try > now]
        return min(ahead) if ahead else None

    def try_soon(self, chat_id: int) -> None:
        """Someone wrote from a chat that had blocked the bot: it was unblocked, so try it at
        the next pass instead of at the slow rate. (A flood wait is kept: Telegram set it.)"""
        chat = self._chats.get(chat_id)
        if chat is not None and chat.log.failing:
            chat.next_try = 0.0

    def waiting(self, chat_id: int) -> bool:
        """True while this chat is not to be sent to: blocked and not yet due for a try, or
        owed alerts that must go first (`owed_to`)."""
        chat = self._chats.get(chat_id)
        return chat is not None and (self.now() < chat.next_try or bool(chat.owed))

    def owe(self, chat_id: int, item: T) -> None:
        """`item` went to another chat but not to this one: kept for when it accepts again."""
        owed = self._chats[chat_id].owed
        owed.append(item)
        if len(owed) > MAX_OWED:
            logger.error("telegram chat {} refuses the bot: {} alerts kept for it, the oldest "
                         "is dropped", chat_id, len(owed))
            del owed[0]

    def due(self) -> list[int]:
        """Chats with owed alerts whose next try is due: their owed alerts go first."""
        now = self.now()
        return [chat_id for chat_id, chat in self._chats.items()
                if chat.owed and now >= chat.next_try]

    def owed_to(self, chat_id: int) -> list[T]:
        """The alerts this chat is owed, oldest first (the list itself: remove what is sent)."""
        return self._chats[chat_id].owed

    def _chat(self, chat_id: int) -> _Blocked[T]:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Blocked(TroubleLog(
                f"telegram chat {chat_id} refuses the bot (blocked, removed, no right to "
                f"send): its alerts are kept and it is tried again every "
                f"{self.retry_every:.0f} s", now=self.now))
        return chat

    def accepted(self, chat_id: int) -> None:
        """A send to this chat went through: it takes messages again (logged once). It stays
        known while alerts are still owed to it, so new ones queue behind them."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return
        if chat.log.failing:
            chat.log.recovered(f"{len(chat.owed)} alerts other chats had follow" if chat.owed
                               else "its pending alerts follow")
        chat.next_try = 0.0
        if not chat.owed:
            del self._chats[chat_id]
