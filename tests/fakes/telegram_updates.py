"""What became of each update the fake Telegram queued for getUpdates: when it was queued,
when a getUpdates first returned it, when a later one confirmed it. The evidence a test
gives when an answer never came: did the bot ever fetch the command?

Confirmation as Telegram documents it (https://core.telegram.org/bots/api#getupdates,
`offset`): "An update is considered confirmed as soon as getUpdates is called with an
offset higher than its update_id"; until then every getUpdates returns it again (to the
next process on the same token too).

    log = UpdateLog()
    log.queued(update)          # the fake's _push_update
    log.asked(offset)           # every getUpdates call, as it comes
    log.answered(updates)       # and the updates it returned
    log.describe(update_id)     # "update 7 '/sl BTCUSDT 49000' queued 05:12:01.204 UTC; ..."
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class UpdateTrail:
    """One update's way to the bot, in wall-clock seconds (the agent's log is in UTC)."""
    update_id: int
    what: str
    queued_at: float
    fetched_at: float | None = None      # the first getUpdates that returned it
    fetches: int = 0                     # how many getUpdates returned it
    confirmed_at: float | None = None    # the first getUpdates with an offset above its id


class UpdateLog:
    """Every update's trail, and when the bot last called getUpdates."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.trails: dict[int, UpdateTrail] = {}
        self.last_poll_at: float | None = None

    @property
    def newest_id(self) -> int | None:
        return max(self.trails, default=None)

    def queued(self, update: dict[str, Any]) -> None:
        self.trails[update["update_id"]] = UpdateTrail(update["update_id"], _what(update),
                                                       self.clock())

    def asked(self, offset: int) -> None:
        """A getUpdates call with `offset`: it confirms every update below it."""
        now = self.clock()
        self.last_poll_at = now
        for trail in self.trails.values():
            if trail.confirmed_at is None and trail.update_id < offset:
                trail.confirmed_at = now

    def answered(self, returned: list[dict[str, Any]]) -> None:
        """A getUpdates answered `returned` (a long poll answers when one comes)."""
        now = self.clock()
        for update in returned:
            trail = self.trails[update["update_id"]]
            trail.fetches += 1
            if trail.fetched_at is None:
                trail.fetched_at = now

    def describe(self, update_id: int | None) -> str:
        """One line: the update's trail and the last getUpdates, with UTC times."""
        trail = self.trails.get(update_id) if update_id is not None else None
        last_poll = f"the last getUpdates came {_at(self.last_poll_at)}"
        if trail is None:
            return f"update {update_id} unknown; {last_poll}"
        fetched = (f"fetched by getUpdates {_at(trail.fetched_at)} ({trail.fetches}x)"
                   if trail.fetched_at is not None else "never fetched by getUpdates")
        confirmed = (f"confirmed {_at(trail.confirmed_at)}" if trail.confirmed_at is not None
                     else "not confirmed")
        return (f"update {trail.update_id} {trail.what!r} queued {_at(trail.queued_at)}; "
                f"{fetched}; {confirmed}; {last_poll}")


def _what(update: dict[str, Any]) -> str:
    if "message" in update:
        return str(update["message"].get("text", ""))
    if "callback_query" in update:
        return f"button {update['callback_query'].get('data', '')}"
    return ", ".join(sorted(update))


def _at(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"
