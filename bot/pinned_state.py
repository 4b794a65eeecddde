"""The operator's intent kept in Telegram: a status message the bot keeps pinned in every
allowed chat, read back with getChat at boot (trader/intent_keeper.py decides what to do
with it). It implements `trader.intent_keeper.IntentPin`.

The message, plain text so that nothing in it can break Telegram's parser:

    📌 tradebot state: ASLEEP: no new entries; open positions stay protected; /wake to trade
    since 2024-05-01 12:00 UTC

    I read this message back when I restart (the host's disk is wiped then): keep it
    pinned, and /shutdown and /pause survive restarts.
    tradebot-state v=1 asleep=yes paused=no symbols=- since=2024-05-01T12:00:00Z

Trust: only a pinned message the bot itself sent counts (a person can pin a copy, but its
`from` is the person); one without a readable `tradebot-state` line is ignored. getChat shows
only the most recent pin (https://core.telegram.org/bots/api#chatfullinfo): if a person pins
something newer, the next change sends a fresh status message and pins it. A group where the
bot may not pin (it needs to be an admin with "Pin messages") gets one ERROR alert and is
left alone until the next start (each try would leave one more unpinned status message there).

A chat that refuses the bot itself (403 "bot was blocked by the user", a 400 "not enough
rights to send text messages", "chat not found": bot/telegram_refusals.py) is behind: one
ERROR alert says so, and it is tried again at the next change, and at once when it answers
again (a command from it, an alert it took: `chat_answers`), so that a /shutdown sent after
unblocking is pinned before a restart on a wiped disk reads the pin. The log names the
chats the state was shown in, and those it was not.
"""

import asyncio
from collections.abc import Callable

from loguru import logger
from telegram import Bot, ChatFullInfo, Message
from telegram.error import BadRequest, ChatMigrated, RetryAfter, TelegramError

from bot.replies import NOT_MODIFIED
from bot.sending import is_transient, retry_after_seconds
from bot.telegram_refusals import Refusal, refusal_kind
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.intent_keeper import PinUnavailable
from trader.operator_intent import LINE_TAG, OperatorIntent, describe

EDIT_TARGET_GONE = "message to edit not found"


def render(intent: OperatorIntent) -> str:
    return (f"📌 tradebot state: {describe(intent)}\n"
            f"since {intent.since:%Y-%m-%d %H:%M} UTC\n\n"
            "I read this message back when I restart (the host's disk is wiped then): keep it "
            "pinned, and /shutdown and /pause survive restarts.\n"
            f"{intent.to_line()}")


class PinRefused(Exception):
    """The chat took the status message but the bot may not pin it (not an admin)."""

    def __init__(self, refusal: TelegramError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class PinnedState:
    """Reads and writes the pinned status message through python-telegram-bot."""

    def __init__(self, bot: Callable[[], Bot], chat_ids: list[int], connected: Callable[[], bool],
                 alerter: Alerter, clock: Clock) -> None:
        self._bot = bot
        self.chat_ids = list(chat_ids)
        self._connected = connected
        self.alerter = alerter
        self.clock = clock
        self._may_not_pin: set[int] = set()   # left alone until the next start (alerted)
        self._behind: set[int] = set()        # refused the bot: shown when they answer again
        self._alerted: set[int] = set()       # an ERROR said so, until the chat is shown
        self._latest: OperatorIntent | None = None    # the last intent asked for
        self._showing = asyncio.Lock()        # one writer per pin: no two status messages
        self._catching_up: set[asyncio.Task[None]] = set()
        self.on_migrated: Callable[[int, int], None] | None = None   # (group, supergroup)

    async def recall(self) -> list[OperatorIntent]:
        """The intent pinned in each allowed chat that has one. PinUnavailable when Telegram
        answered for no chat (not connected yet, network down, flood control)."""
        bot = self._ready()
        found: list[OperatorIntent] = []
        answered = 0
        flood_wait: float | None = None
        for chat_id in list(self.chat_ids):
            try:
                pinned = (await self._get_chat(bot, chat_id)).pinned_message
            except TelegramError as exc:
                if is_transient(exc):
                    logger.warning("pinned state unreadable chat={} error={!r}", chat_id, exc)
                    if isinstance(exc, RetryAfter):
                        flood_wait = max(flood_wait or 0.0, retry_after_seconds(exc))
                    continue
                answered += 1
                self._cannot(chat_id, "read", exc)
                continue
            answered += 1
            intent = self._intent_of(pinned, bot.id, chat_id)
            if intent is not None:
                found.append(intent)
        if not answered:
            raise PinUnavailable("telegram answered for no allowed chat", retry_after=flood_wait)
        logger.info("pinned state read chats={} found={}", answered,
                    [i.run_state for i in found])
        return found

    async def publish(self, intent: OperatorIntent) -> None:
        """Show `intent` in every allowed chat: edit our pinned message, or send and pin a new
        one. PinUnavailable when a chat could not be reached (retried by the keeper)."""
        bot = self._ready()
        self._latest = intent
        shown: list[int] = []
        unreachable = 0
        flood_wait: float | None = None      # the longest wait flood control asked for
        async with self._showing:
            for chat_id in [c for c in self.chat_ids if c not in self._may_not_pin]:
                try:
                    shown.append(await self._show_in(bot, chat_id, render(intent)))
                except TelegramError as exc:
                    if is_transient(exc):
                        unreachable += 1
                        if isinstance(exc, RetryAfter):
                            flood_wait = max(flood_wait or 0.0, retry_after_seconds(exc))
                        continue
                    self._cannot(chat_id, "update", exc)
                except PinRefused as exc:
                    self._cannot(chat_id, "pin", exc.refusal)
        left = [c for c in self.chat_ids if c not in shown]
        if shown:
            logger.info("pinned state shown state={} since={} chats={}", intent.run_state,
                        intent.since, shown)
        if left:
            logger.warning("pinned state not shown state={} chats={} (behind: {}; may not pin: "
                           "{}; unreachable: {})", intent.run_state, left,
                           sorted(self._behind), sorted(self._may_not_pin), unreachable)
        if flood_wait is not None:
            raise PinUnavailable(f"Telegram's flood control: retry in {flood_wait:.0f} s",
                                 retry_after=flood_wait)
        if unreachable:
            raise PinUnavailable(f"{unreachable} chat(s) unreachable")

    def chat_answers(self, chat_id: int) -> None:
        """A chat took a message or wrote to the bot: if its pin is behind, bring it up to
        date now (not at the next change: a restart may come first)."""
        if chat_id not in self._behind or self._latest is None or not self._connected():
            return
        self._behind.discard(chat_id)
        task = asyncio.create_task(self._catch_up(chat_id, self._latest),
                                   name=f"pin-catch-up-{chat_id}")
        self._catching_up.add(task)
        task.add_done_callback(self._catching_up.discard)
        task.add_done_callback(_log_if_crashed)

    async def _catch_up(self, chat_id: int, intent: OperatorIntent) -> None:
        try:
            async with self._showing:
                if intent is not self._latest:
                    return     # a newer publish came meanwhile and tried this chat itself
                shown = await self._show_in(self._bot(), chat_id, render(intent))
        except TelegramError as exc:
            if is_transient(exc):
                self._behind.add(chat_id)       # tried again at the next answer or change
                logger.warning("pinned state catch-up failed chat={} error={!r}", chat_id, exc)
                return
            self._cannot(chat_id, "update", exc)
            return
        except PinRefused as exc:
            self._cannot(chat_id, "pin", exc.refusal)
            return
        logger.info("pinned state shown state={} since={} chats={} (the chat answered again)",
                    intent.run_state, intent.since, [shown])

    async def _show_in(self, bot: Bot, chat_id: int, text: str) -> int:
        """Show `text` in one chat (following a migration); the chat id it is shown in."""
        try:
            await self._show(bot, chat_id, text)
        except ChatMigrated as exc:
            chat_id = self._follow(chat_id, exc.new_chat_id)
            await self._show(bot, chat_id, text)
        self._behind.discard(chat_id)
        self._alerted.discard(chat_id)
        return chat_id

    def follow_migration(self, group_id: int, supergroup_id: int) -> None:
        """An allowed group became a supergroup: its pin lives at the new id from now on."""
        self.chat_ids = [supergroup_id if c == group_id else c for c in self.chat_ids]

    def _follow(self, group_id: int, supergroup_id: int) -> int:
        logger.warning("pinned state: group became a supergroup chat={} new_chat={}", group_id,
                       supergroup_id)
        self.follow_migration(group_id, supergroup_id)
        if self.on_migrated is not None:
            self.on_migrated(group_id, supergroup_id)
        return supergroup_id

    async def _get_chat(self, bot: Bot, chat_id: int) -> ChatFullInfo:
        """getChat, following a group that became a supergroup (400 migrate_to_chat_id,
        https://core.telegram.org/bots/api#responseparameters)."""
        try:
            return await bot.get_chat(chat_id)
        except ChatMigrated as exc:
            return await bot.get_chat(self._follow(chat_id, exc.new_chat_id))

    async def _show(self, bot: Bot, chat_id: int, text: str) -> None:
        pinned = (await bot.get_chat(chat_id)).pinned_message
        if self._is_ours(pinned, bot.id):
            assert isinstance(pinned, Message)
            if pinned.text == text:
                return
            try:
                await bot.edit_message_text(text, chat_id, pinned.message_id)
                return
            except BadRequest as exc:
                if NOT_MODIFIED in exc.message:
                    return
                if EDIT_TARGET_GONE not in exc.message.lower():
                    raise
        sent = await bot.send_message(chat_id, text, disable_notification=True)
        try:
            await bot.pin_chat_message(chat_id, sent.message_id, disable_notification=True)
        except TelegramError as exc:
            # The chat took the message, so a refusal here is the pin right itself, whatever
            # its words ("not enough rights to manage pinned messages in the chat").
            if is_transient(exc):
                raise
            raise PinRefused(exc) from exc

    def _ready(self) -> Bot:
        if not self._connected():
            raise PinUnavailable("telegram not connected yet")
        return self._bot()

    @staticmethod
    def _is_ours(message: object, bot_id: int) -> bool:
        return (isinstance(message, Message) and message.from_user is not None
                and message.from_user.id == bot_id and LINE_TAG in (message.text or ""))

    def _intent_of(self, pinned: object, bot_id: int, chat_id: int) -> OperatorIntent | None:
        if pinned is None:
            return None
        if not self._is_ours(pinned, bot_id):
            logger.info("pinned message in chat={} is not our state message; ignored", chat_id)
            return None
        assert isinstance(pinned, Message)
        intent = OperatorIntent.from_line(pinned.text or "")
        if intent is None:
            logger.warning("our pinned state message in chat={} is unreadable; ignored text={!r}",
                           chat_id, pinned.text)
        return intent

    def _cannot(self, chat_id: int, what: str, exc: TelegramError) -> None:
        """A refusal Telegram will repeat: the chat refuses the bot (behind: tried again when
        it answers, and at the next change), or the bot may not pin there (left alone until
        the next start). Said once in an ERROR alert, until the chat is shown the state."""
        logger.warning("pinned state: cannot {} in chat={} error={!r}", what, chat_id, exc)
        refuses_the_bot = what != "pin" and refusal_kind(exc) is Refusal.CHAT
        if refuses_the_bot:
            self._behind.add(chat_id)
            advice = ("the chat refuses the bot for now: it is brought up to date as soon as "
                      "it answers again (any command from it) or at the next change; until "
                      "then a restart on a wiped disk may read an older state there.")
        else:
            self._may_not_pin.add(chat_id)
            advice = ("/shutdown and /pause may not survive a restart on a wiped disk; in a "
                      "group, make the bot an admin with the 'Pin messages' right, then restart.")
        if chat_id in self._alerted:
            return
        self._alerted.add(chat_id)
        self.alerter.publish(Alert(
            AlertName.ERROR, f"Cannot keep the state message pinned in chat {chat_id} "
            f"({exc.message}): {advice}", dedup_key=f"pin:{chat_id}"), self.clock.now())


def _log_if_crashed(task: "asyncio.Task[None]") -> None:
    """A catch-up that dies of anything else (the bot stopping under it) says so."""
    if task.cancelled() or task.exception() is None:
        return
    logger.opt(exception=task.exception()).error("pinned state catch-up {} crashed",
                                                 task.get_name())
