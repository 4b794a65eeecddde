"""An allowed group that Telegram upgraded to a supergroup (a new chat id), followed: its
allowed members are obeyed there, alerts and the pinned state go there, and the owner is
told which id to put in TELEGRAM_ALLOWED_CHAT_IDS.

Telegram says so twice: in service messages as soon as it happens (Message.
migrate_to_chat_id in the group, migrate_from_chat_id in the supergroup:
https://core.telegram.org/bots/api#message), and in the 400 answering a send to the old id
(parameters.migrate_to_chat_id: https://core.telegram.org/bots/api#responseparameters).
Whichever comes first is followed; the other finds it done.

    migration = GroupMigration(gate, alerter, clock)
    migration.targets = [delivery.moved.__setitem__, intent_pin.follow_migration]
    migration.follow(group_id, supergroup_id)     # from a 400
    migration.announced(message)                  # from any update
"""

from collections.abc import Callable

from telegram import Message

from bot.auth import ChatGate
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock


class GroupMigration:
    def __init__(self, gate: ChatGate, alerter: Alerter, clock: Clock) -> None:
        self.gate = gate
        self.alerter = alerter
        self.clock = clock
        # what else follows the new id (the alert delivery, the pinned state)
        self.targets: list[Callable[[int, int], object]] = []

    def announced(self, message: Message | None) -> None:
        """Follow a migration Telegram's service message announces; anything else: nothing."""
        if message is None:
            return
        if message.migrate_to_chat_id and message.chat_id in self.gate.allowed_chat_ids:
            self.follow(message.chat_id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id \
                and message.migrate_from_chat_id in self.gate.allowed_chat_ids:
            self.follow(message.migrate_from_chat_id, message.chat_id)

    def follow(self, group_id: int, supergroup_id: int) -> None:
        """An allowed group became a supergroup (new id): obey it there, tell the owner."""
        if supergroup_id in self.gate.allowed_chat_ids:
            return   # already followed
        self.gate.follow_migration(group_id, supergroup_id)
        for target in self.targets:
            target(group_id, supergroup_id)
        self.alerter.publish(Alert(
            AlertName.ERROR, f"The Telegram group {group_id} became a supergroup with the id "
            f"{supergroup_id}: alerts go there now and its allowed members are obeyed there. "
            f"Put {supergroup_id} in TELEGRAM_ALLOWED_CHAT_IDS in place of {group_id}.",
            dedup_key=f"telegram-migrated:{group_id}"), self.clock.now())
