"""The intents table, the write-ahead journal of every order (docs/ARCHITECTURE.md
"Persistence"), kept in memory too: the part of `TradeStore` (trader/trade_store.py) that
answers the engine's questions about intents without a query.

    store.save_intent(intent)                  # one transaction; SaveStateFailure if not
    store.unresolved_intents()                 # by creation time, as SQLite lists them
"""

from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from storage import Store
from storage.codec import dump, load
from storage.db import LOCK_WAIT_SECONDS
from storage.iso_text import iso_text, iso_text_once
from trader.domain import Intent, IntentStatus
from trader.last_known import LastKnown

# An ISO time's text begins with a digit: "~" sorts after all of them ("no intent at all").
NO_INTENT = "~"
PURGE_CHUNK = 500       # client ids per statement (SQLite caps a statement's parameters)
# The statuses that are `resolved`, as a tuple: `status in RESOLVED` compares by identity (a
# set would hash the member through Enum's Python `__hash__`; the property is a call too)
RESOLVED = tuple(status for status in IntentStatus if status.resolved)


def _utc_time_of(text: str) -> datetime | None:
    """The UTC time whose `isoformat()` is `text` exactly, else None (another zone, another
    spelling, NO_INTENT). Two UTC times order as such texts do: `isoformat` writes them
    fixed-width up to the seconds ("%04d-%02d-%02dT%02d:%02d:%02d"), then ".ffffff" only
    when there are microseconds, then "+00:00"; and "." sorts after "+", so of two with the
    same seconds the one with microseconds sorts last, as it is later."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is UTC and at.isoformat() == text else None


class IntentRecords(Store):
    """`Store` plus the intents.

    The intents table is also kept in memory (`_intents`, read from the database at the
    first read): this process is its only writer (trader/instance_lock.py; the CLI writes
    key-value state only), so its reads (one intent, a position's, the unresolved ones,
    "any older than ...") are answered without a query, listed in the order the database's
    own queries give (tests/test_intent_listings.py). What a failed write or a rolled-back
    batch may have left out of the database is forgotten and read again. Writes are
    unchanged: each is in the database (committed, outside a replay's batch) when it
    returns."""

    def __init__(self, db: Database, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        super().__init__(db, lock_wait)
        # client id -> (the intent as saved, its created_at as stored); None: not read yet
        self._known_intents: dict[str, tuple[Intent, str]] | None = None
        # the least created_at text of `_known_intents` (NO_INTENT: none); None: not known,
        # found again at the next ask. Lowered by a save, forgotten when an intent goes or
        # moves later in time (and with `_known_intents`).
        self._oldest_created: str | None = None
        # (`_oldest_created`, its UTC time or None: `_utc_time_of`) as last parsed
        self._oldest_time: tuple[str, datetime | None] | None = None
        # client id -> every unresolved intent of `_known_intents` as saved, in no set
        # order; None: not known, found again at the next ask (and forgotten with
        # `_known_intents`). Kept with each save: a purge deletes resolved ones only.
        self._unresolved: dict[str, Intent] | None = None
        # The cache as a failed write found it: answered while the database cannot be read
        # either (protection reads intents before each placement; trader/last_known.py).
        self._last_intents = LastKnown[dict[str, tuple[Intent, str]]]("intents")

    def _forget_cached(self) -> None:
        self._last_intents.forgotten(self._known_intents)
        self._known_intents = None
        self._oldest_created = None
        self._unresolved = None

    def _intents(self) -> dict[str, tuple[Intent, str]]:
        known = self._known_intents
        if known is None:
            known, read = self._last_intents.read(self._read_intents)
            if read:
                self._known_intents = known
        return known

    def _read_intents(self) -> dict[str, tuple[Intent, str]]:
        self._gate.flush("intents")
        return {row["client_id"]: (self._intent(row), row["created_at"])
                for row in self._rows("SELECT * FROM intents ORDER BY rowid", [])}

    # --- intents ------------------------------------------------------------------
    def save_intent(self, intent: Intent, now: datetime | None = None) -> None:
        def row() -> dict[str, Any]:
            values = dump(intent)
            values["reduce_only"] = int(intent.reduce_only)
            values["close_position"] = int(intent.close_position)
            values["updated_at"] = iso_text(now or intent.created_at)
            return values
        client_id = intent.client_id
        known = self._known_intents     # None: not read yet, nothing to keep up to date
        self._gate.save_later("intent", "intents", (client_id,), row, ("client_id",), intent,
                              intent.status)
        if known is not None and self._known_intents is known:    # not forgotten meanwhile
            # its created_at as stored: the text of the one saved before when it is the same
            # object (`with_status` keeps it; equal instants in other zones are other text):
            # then it has not moved. The oldest creation time follows (lowered by this one;
            # forgotten when the intent moved, it may have been the oldest)
            before = known.get(client_id)
            if before is not None and before[0].created_at is intent.created_at:
                created, moved = before[1], False
            else:
                created = iso_text(intent.created_at)
                moved = before is not None and before[1] != created
            known[client_id] = (intent, created)
            oldest = self._oldest_created
            if oldest is not None:
                if moved:
                    self._oldest_created = None
                elif created < oldest:
                    self._oldest_created = created
            unresolved = self._unresolved
            if unresolved is not None:
                if intent.status in RESOLVED:     # `.resolved`, without its calls
                    unresolved.pop(client_id, None)
                else:
                    unresolved[client_id] = intent

    def intent(self, client_id: str) -> Intent | None:
        known = self._intents().get(client_id)
        return known[0] if known is not None else None

    def unresolved_intents(self) -> list[Intent]:
        """Every intent not resolved yet, by creation time, ties by status, then in the
        order they were first saved: as "SELECT ... WHERE status IN (...) ORDER BY
        created_at" lists them (it reads them by the status index)."""
        mine = [(created, intent) for intent, created in self._intents().values()
                if not intent.status.resolved]
        mine.sort(key=_created_text_then_status)    # stable: ties stay in saving order
        return [intent for _, intent in mine]

    def intents_for(self, symbol: str, position_key: str) -> list[Intent]:
        """The position's intents by creation time, ties in the order they were first saved:
        as "SELECT ... ORDER BY created_at" lists them (SQLite's sort keeps the table's
        row order for ties, and rows are numbered as inserted)."""
        mine = [(created, intent) for intent, created in self._intents().values()
                if intent.symbol == symbol and intent.position_key == position_key]
        mine.sort(key=_created_text)            # stable: ties stay in saving order
        return [intent for _, intent in mine]

    def unresolved_intents_for(self, symbol: str, position_key: str) -> list[Intent]:
        """The position's intents not resolved yet, in `intents_for`'s order."""
        return [intent for intent in self.intents_for(symbol, position_key)
                if not intent.status.resolved]

    def has_intents_before(self, before: datetime) -> bool:
        """Whether any intent was created before `before` (the cleanup has work to do).
        Asked every tick: answered from the oldest creation time, kept with each save,
        compared as stored (ISO text)."""
        oldest = self._oldest_created
        if oldest is None:
            oldest = min((created for _, created in self._intents().values()),
                         default=NO_INTENT)
            self._oldest_created = oldest
        if oldest == NO_INTENT:
            return False        # "~" sorts after every ISO text (they start with a digit)
        parsed = self._oldest_time
        if parsed is None or parsed[0] is not oldest:
            parsed = self._oldest_time = (oldest, _utc_time_of(oldest))
        at = parsed[1]
        # `before.isoformat()` costs ~10,700 instructions (the cleanup asks twice every 30
        # minutes of engine time: every 6th candle of a 5m replay). Two UTC times order as
        # their ISO texts do (`_utc_time_of`), so a UTC `before` is compared as a time with
        # the oldest text's own.
        if at is not None and before.tzinfo is UTC:
            return at < before
        return oldest < before.isoformat()      # other zones: the stored text's order

    def has_unresolved_before(self, before: datetime) -> bool:
        """Whether any intent not resolved yet was created before `before`: whether
        `unresolved_intents()` lists one with `created_at < before` (the cleanup's stuck
        intents): the same intents (those of `_intents()` not resolved, kept with each
        save), the same comparison, without listing and sorting them all."""
        unresolved = self._unresolved
        if unresolved is None:
            known = self._intents()
            unresolved = {client_id: intent for client_id, (intent, _) in known.items()
                          if not intent.status.resolved}
            if self._known_intents is known:    # read, not the last known: kept from here on
                self._unresolved = unresolved
        return any(intent.created_at < before for intent in unresolved.values())

    def purge_resolved_intents(self, before: datetime) -> int:
        """Delete the resolved intents created before `before`; how many went.

        Which ones is decided on the intents as saved last (`_intents`: the database's rows
        and a batch's held-back ones), and they are deleted by client id: the held-back
        rows of those are dropped rather than written first only to be deleted (what a
        flush, then "DELETE ... WHERE status IN (resolved) AND created_at < ?", did)."""
        cutoff = iso_text_once(before)     # compared as stored: ISO text
        # grouped: all or none when it takes several statements (and the intents are read
        # inside, so a failed read is a failed save)
        with self._gate.saving("intent cleanup", grouped=True):
            known = self._intents()
            doomed = [client_id for client_id, (intent, created) in known.items()
                      if intent.status.resolved and created < cutoff]
            # before the deletes: the last one is the group's last statement (in a replay
            # batch, a cleanup of one chunk takes no savepoint: `WriteGate.write`); a failed
            # delete gives the held rows back (the group's mark)
            self._gate.drop_held("intents", [(client_id,) for client_id in doomed])
            for start in range(0, len(doomed), PURGE_CHUNK):
                chunk = doomed[start:start + PURGE_CHUNK]
                self._gate.write(f"DELETE FROM intents WHERE client_id IN "
                                 f"({','.join('?' * len(chunk))})", chunk,
                                 last=start + PURGE_CHUNK >= len(doomed))
        if self._known_intents is known:    # not forgotten meanwhile
            for client_id in doomed:
                del known[client_id]
            if doomed:
                self._oldest_created = None
        return len(doomed)

    @staticmethod
    def _intent(row: dict[str, Any]) -> Intent:
        row = {k: v for k, v in row.items() if k != "updated_at"}
        row["reduce_only"] = bool(row["reduce_only"])
        row["close_position"] = bool(row["close_position"])
        return load(Intent, row)


def _created_text(entry: tuple[str, Intent]) -> str:
    return entry[0]


def _created_text_then_status(entry: tuple[str, Intent]) -> tuple[str, str]:
    return entry[0], entry[1].status._value_
