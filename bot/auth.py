"""Who may command the agent: allowed chats and, inside them, allowed users.

Only chats in TELEGRAM_ALLOWED_CHAT_IDS are obeyed; when TELEGRAM_ALLOWED_USER_IDS is set,
only those users inside them (a group chat must not hand control to every member).
Anyone else gets at most one generic refusal per chat, is logged, and their first command
raises an UNAUTHORIZED alert to the owner through the alert outbox (repeats: one per 5 min),
which only the allowed private chats read whole (bot/alert_audience.py).
A command addressed to another bot ("/status@OtherBot" in a group both bots are in) is not
for us at all: neither run, nor answered, nor counted as an attempt
(https://core.telegram.org/bots/features#commands: "/command@this_bot" in groups).
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from loguru import logger

from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.display import plural

REFUSAL_TEXT = "This bot only answers its owner."
UNAUTHORIZED_KEY = "UNAUTHORIZED"
THEIR_MESSAGE = "Their last message: "      # what a stranger wrote comes after this
MAX_TRACKED_CHATS = 10_000


def addressed_to_another_bot(text: str, our_username: str | None) -> bool:
    """True for "/cmd@OtherBot ..." when we are not OtherBot (usernames ignore case)."""
    command = text.split(maxsplit=1)[0] if text.strip() else ""
    _, at, addressee = command.partition("@")
    return bool(at) and addressee.lower() != (our_username or "").lower()


class Access(StrEnum):
    ALLOW = "allow"
    REFUSE = "refuse"   # not allowed; send the one generic refusal to this chat
    IGNORE = "ignore"   # not allowed; this chat was already refused once


class ChatGate:
    """Decides, per incoming command or button press, whether it may reach the engine."""

    def __init__(self, allowed_chat_ids: Iterable[int], allowed_user_ids: Iterable[int],
                 alerter: Alerter, alert_after: int = 1) -> None:
        self.allowed_chat_ids = frozenset(allowed_chat_ids)
        self.allowed_user_ids = frozenset(allowed_user_ids)
        self.alerter = alerter
        self.alert_after = alert_after
        self._attempts: dict[int, int] = {}

    def follow_migration(self, group_id: int, supergroup_id: int) -> None:
        """Telegram answered that an allowed group is now a supergroup with a new id
        (parameters.migrate_to_chat_id, https://core.telegram.org/bots/api#responseparameters):
        the new id is allowed too. Only Telegram's own answer to our call leads here."""
        if group_id in self.allowed_chat_ids:
            self.allowed_chat_ids = self.allowed_chat_ids | {supergroup_id}

    def allows(self, chat_id: int | None, user_id: int | None) -> bool:
        if chat_id is None or chat_id not in self.allowed_chat_ids:
            return False
        return not self.allowed_user_ids or user_id in self.allowed_user_ids

    def check(self, chat_id: int | None, user_id: int | None, what: str, now: datetime) -> Access:
        """Access for one attempt; refused attempts are counted, logged and alerted."""
        if self.allows(chat_id, user_id):
            return Access.ALLOW
        key = chat_id if chat_id is not None else 0
        if key not in self._attempts and len(self._attempts) >= MAX_TRACKED_CHATS:
            self._attempts.clear()   # bounded memory under a flood; worst case: one more refusal
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        logger.warning("unauthorized telegram attempt chat={} user={} attempts={} {}{}",
                       chat_id, user_id, attempts, THEIR_MESSAGE, what[:64])
        if attempts >= self.alert_after:
            self._alert_owner(chat_id, user_id, what, attempts, now)
        return Access.REFUSE if attempts == 1 else Access.IGNORE

    def _alert_owner(self, chat_id: int | None, user_id: int | None, what: str, attempts: int,
                     now: datetime) -> None:
        # The stranger's words last, on a line of their own: bot/alert_audience.py leaves
        # them out where a group would read them (`without_their_message`).
        text = (f"Commands from a chat or user that is not allowed: chat {chat_id}, "
                f"user {user_id}, {plural(attempts, 'attempt')}. Nothing was executed.\n"
                f"{THEIR_MESSAGE}{what[:64]}")
        self.alerter.publish(Alert(AlertName.UNAUTHORIZED, text, dedup_key=UNAUTHORIZED_KEY), now)


def without_their_message(text: str) -> str:
    """An UNAUTHORIZED alert's text (or its log line: the alerter's, the gate's) without
    what the stranger wrote, which comes last."""
    return text.partition(THEIR_MESSAGE)[0].rstrip(" |\n")
