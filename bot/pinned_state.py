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
bot may not pin (it needs to be an admin with "Pin messages") gets one ERROR alert.
"""

from collections.abc import Callable

from loguru import logger
from telegram import Bot, ChatFullInfo, Message
from telegram.error import BadRequest, ChatMigrated, TelegramError

from bot.replies import NOT_MODIFIED
from bot.sending import is_transient
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


class PinnedState:
    """Reads and writes the pinned status message through python-telegram-bot."""

    def __init__(self, bot: Callable[[], Bot], chat_ids: list[int], connected: Callable[[], bool],
                 alerter: Alerter, clock: Clock) -> None:
        self._bot = bot
        self.chat_ids = list(chat_ids)
        self._connected = connected
        self.alerter = alerter
        self.clock = clock
        self._refused: set[int] = set()    # chats that refused a read or a pin (alerted once)
        self.on_migrated: Callable[[int, int], None] | None = None   # (group, supergroup)

    async def recall(self) -> list[OperatorIntent]:
        """The intent pinned in each allowed chat that has one. PinUnavailable when Telegram
        answered for no chat (not connected yet, network down, flood control)."""
        bot = self._ready()
        found: list[OperatorIntent] = []
        answered = 0
        for chat_id in list(self.chat_ids):
            try:
                pinned = (await self._get_chat(bot, chat_id)).pinned_message
            except TelegramError as exc:
                if is_transient(exc):
                    logger.warning("pinned state unreadable chat={} error={!r}", chat_id, exc)
                    continue
                answered += 1
                self._cannot(chat_id, "read", exc)
                continue
            answered += 1
            intent = self._intent_of(pinned, bot.id, chat_id)
            if intent is not None:
                found.append(intent)
        if not answered:
            raise PinUnavailable("telegram answered for no allowed chat")
        logger.info("pinned state read chats={} found={}", answered,
                    [i.run_state for i in found])
        return found

    async def publish(self, intent: OperatorIntent) -> None:
        """Show `intent` in every allowed chat: edit our pinned message, or send and pin a new
        one. PinUnavailable when a chat could not be reached (retried by the keeper)."""
        bot = self._ready()
        text = render(intent)
        unreachable = 0
        # A chat that refused (no pin right, bot blocked) is left alone until the next start.
        for chat_id in [c for c in self.chat_ids if c not in self._refused]:
            try:
                try:
                    await self._show(bot, chat_id, text)
                except ChatMigrated as exc:
                    await self._show(bot, self._follow(chat_id, exc.new_chat_id), text)
            except TelegramError as exc:
                if is_transient(exc):
                    unreachable += 1
                    continue
                self._cannot(chat_id, "pin", exc)
        if unreachable:
            raise PinUnavailable(f"{unreachable} chat(s) unreachable")
        logger.info("pinned state shown state={} since={}", intent.run_state, intent.since)

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
        await bot.pin_chat_message(chat_id, sent.message_id, disable_notification=True)

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
        logger.warning("pinned state: cannot {} in chat={} error={!r}", what, chat_id, exc)
        if chat_id in self._refused:
            return
        self._refused.add(chat_id)
        self.alerter.publish(Alert(
            AlertName.ERROR, f"Cannot keep the state message pinned in chat {chat_id} "
            f"({exc.message}). /shutdown and /pause may not survive a restart on a wiped disk; "
            "in a group, make the bot an admin with the 'Pin messages' right.",
            dedup_key=f"pin:{chat_id}"), self.clock.now())
