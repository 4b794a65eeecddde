"""Which allowed chats get an alert, in which words.

Every alert goes to every allowed chat (TELEGRAM_ALLOWED_CHAT_IDS), except UNAUTHORIZED: it
carries a stranger's chat and user ids and what they wrote, which the other members of an
allowed group must not read. It goes to the private chats among the allowed ones only (a
private chat's id is its user's, positive; a group's or supergroup's is negative,
"-100..." for a supergroup: https://core.telegram.org/bots/api#chat "id", and the
migrate_to_chat_id of https://core.telegram.org/bots/api#message). When only groups are
allowed they still hear of it, without the stranger's message (`bot/auth.py`
`without_their_message`); /alerts asked in a group lists it so too (`as_read_in`).

    for chat_id, alert in addressed(outgoing, delivery.chat_ids).items():
        send(chat_id, format_alert(alert))
"""

from collections.abc import Iterable
from dataclasses import replace

from bot.auth import without_their_message
from trader.alerts import AlertName, OutgoingAlert
from trader.commands import AlertView


def is_private(chat_id: int) -> bool:
    """A one-to-one chat with a user (its id is the user's id, positive)."""
    return chat_id > 0


def addressed(alert: OutgoingAlert, chat_ids: Iterable[int]) -> dict[int, OutgoingAlert]:
    """The chats among `chat_ids` that get `alert`, each with the alert as it reads there."""
    chats = list(chat_ids)
    if alert.name != AlertName.UNAUTHORIZED:
        return dict.fromkeys(chats, alert)
    private = [chat_id for chat_id in chats if is_private(chat_id)]
    if private:
        return dict.fromkeys(private, alert)
    told = replace(alert, text=without_their_message(alert.text))
    return dict.fromkeys(chats, told)


def as_read_in(chat_id: int, alerts: list[AlertView]) -> list[AlertView]:
    """The /alerts list as `chat_id` reads it: in a group, UNAUTHORIZED without the
    stranger's message."""
    if is_private(chat_id):
        return alerts
    return [replace(a, text=without_their_message(a.text))
            if a.name == AlertName.UNAUTHORIZED else a for a in alerts]
