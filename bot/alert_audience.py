"""Which allowed chats get an alert, in which words.

Every alert goes to every allowed chat (TELEGRAM_ALLOWED_CHAT_IDS), except UNAUTHORIZED: it
carries a stranger's chat and user ids and what they wrote, which the other members of an
allowed group must not read. It goes to the private chats among the allowed ones only (a
private chat's id is its user's, positive; a group's or supergroup's is negative,
"-100..." for a supergroup: https://core.telegram.org/bots/api#chat "id", and the
migrate_to_chat_id of https://core.telegram.org/bots/api#message). When only groups are
allowed they still hear of it, without the stranger's message (`bot/auth.py`
`without_their_message`); /alerts and /logs asked in a group list it so too (`as_read_in`).

A REPLY (a command's answer Telegram did not take in time, bot/replies.py) goes to the chat
that asked only: it was written for that chat (a private chat's /alerts lists a stranger's
words), and nobody else asked. Its key names the chat (`reply_key`).

    for chat_id, alert in addressed(outgoing, delivery.chat_ids).items():
        send(chat_id, format_alert(alert))
"""

from collections.abc import Iterable
from dataclasses import replace

from bot.auth import THEIR_MESSAGE, without_their_message
from trader.alerts import AlertName, OutgoingAlert
from trader.commands import CommandResult


def is_private(chat_id: int) -> bool:
    """A one-to-one chat with a user (its id is the user's id, positive)."""
    return chat_id > 0


REPLY_KEY = "reply"


def reply_key(chat_id: int, moment: str) -> str:
    """The dedup key of a late reply to `chat_id` (`moment`: what makes it unique)."""
    return f"{REPLY_KEY}:{chat_id}:{moment}"


def reply_chat(dedup_key: str) -> int | None:
    """The chat a late reply answers (None: not a reply's key)."""
    kind, _, rest = dedup_key.partition(":")
    chat, _, _ = rest.partition(":")
    try:
        return int(chat) if kind == REPLY_KEY else None
    except ValueError:
        return None


def addressed(alert: OutgoingAlert, chat_ids: Iterable[int]) -> dict[int, OutgoingAlert]:
    """The chats among `chat_ids` that get `alert`, each with the alert as it reads there
    (a REPLY: the chat that asked, whatever the list)."""
    chats = list(chat_ids)
    if alert.name == AlertName.REPLY:
        asked = reply_chat(alert.dedup_key)
        if asked is not None:
            return {asked: alert}
        return _privately(alert, chats)     # whose it was is unknown: told as UNAUTHORIZED is
    if alert.name != AlertName.UNAUTHORIZED:
        return dict.fromkeys(chats, alert)
    return _privately(alert, chats)


def _privately(alert: OutgoingAlert, chats: list[int]) -> dict[int, OutgoingAlert]:
    """The private chats get `alert` whole; with none, every chat without a stranger's words."""
    private = [chat_id for chat_id in chats if is_private(chat_id)]
    if private:
        return dict.fromkeys(private, alert)
    told = replace(alert, text=without_their_message(alert.text))
    return dict.fromkeys(chats, told)


def as_read_in(chat_id: int, result: CommandResult) -> CommandResult:
    """A command's answer as `chat_id` reads it: in a group, /alerts lists UNAUTHORIZED and
    /logs the warnings of a stranger's attempt without the stranger's message."""
    if is_private(chat_id) or (result.alerts is None and result.logs is None):
        return result
    alerts = None if result.alerts is None else [
        replace(a, text=without_their_message(a.text))
        if a.name == AlertName.UNAUTHORIZED else a for a in result.alerts]
    logs = None if result.logs is None else [
        replace(line, message=without_their_message(line.message))
        if THEIR_MESSAGE in line.message else line for line in result.logs]
    return replace(result, alerts=alerts, logs=logs)
