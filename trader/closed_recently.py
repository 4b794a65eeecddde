"""The positions closed lately, kept in memory by the store that saves them.

The daily summary asks every day for the positions closed in the last 24 h; read from the
database, each is a row parsed back into a `Position` (~0.5 M instructions: ~2 % of a
backtest with trades). This process is the positions table's only writer
(trader/instance_lock.py), so after one read the store keeps the answer up to date with its
own saves instead; a store opened on a table with no closed position (a new database)
knows them from the start and need not read them back (trader/trade_store.py).

Invariant: while `horizon` is set, `closed` holds every position saved CLOSED whose close
time, as stored (ISO text: the database compares that text), is at or after `horizon`,
and nothing else. A read for an earlier time than `horizon` goes to the database again.

A backtest's report needs every trade (the trades of ~20 k candles decoded back from their
JSON at the end: ~2 % of the run): it attaches a `ClosedArchive` here, which keeps the
report's fields of each position as it is saved closed (trader/backtest.py).
"""

from typing import NamedTuple

from storage.iso_text import iso_text
from trader.domain import CloseReason
from trader.position import ExitPlan, Position, PositionState
from trader.trade_stats import TradeRecord

Key = tuple[str, str]     # (symbol, position key), the table's primary key


class ClosedRecently:
    def __init__(self) -> None:
        self.horizon: str | None = None      # None: not read yet (or forgotten)
        self.closed: dict[Key, tuple[str, Position]] = {}   # key -> (closed_at text, it)
        self.archive: ClosedArchive | None = None   # a backtest's: every save goes there too

    def knows(self, since: str) -> bool:
        """Whether every position closed at or after `since` (ISO text) is known here."""
        return self.horizon is not None and since >= self.horizon

    def fill(self, since: str, positions: list[Position]) -> None:
        """What the database answered for `since`: every position closed at or after it."""
        self.closed = {}
        self.horizon = since
        for position in positions:
            self._keep(position, since)

    def saved(self, position: Position) -> None:
        """A position as just saved: kept when it is closed inside the horizon, else dropped
        (a record saved again in another state, or closed earlier)."""
        if self.archive is not None:
            self.archive.saved(position)
        horizon = self.horizon
        if horizon is not None:
            self._keep(position, horizon)

    def _keep(self, position: Position, horizon: str) -> None:
        key = (position.symbol, position.key)
        closed_at = position.closed_at
        if position.state is PositionState.CLOSED and closed_at is not None:
            text = iso_text(closed_at)
            if text >= horizon:
                self.closed[key] = (text, position)
                return
        self.closed.pop(key, None)

    def since(self, since: str) -> list[Position]:
        """The positions closed at or after `since` (at or after the horizon: `knows`), by
        close time (ties in no set order); the earlier ones are let go (the horizon moves up
        to `since`)."""
        if since != self.horizon:
            self.closed = {key: entry for key, entry in self.closed.items() if entry[0] >= since}
            self.horizon = since
        return [position for _, position in sorted(self.closed.values(), key=_closed_text)]

    def forget(self) -> None:
        """A write failed or a batch was rolled back: read the database again next time."""
        self.horizon = None
        self.closed = {}
        if self.archive is not None:
            self.archive.lost()


def _closed_text(entry: tuple[str, Position]) -> str:
    return entry[0]


class ClosedTrade(NamedTuple):
    """What a backtest's report keeps of one closed position (not the position: memory)."""
    closed_at: str            # as stored (ISO text): the database orders by it
    order: int                # the position's first save (its row's rowid): ties' order
    trade: TradeRecord        # without its funding (trader/trade_history.py `with_funding`)
    exit_plan: ExitPlan


class ClosedArchive:
    """The report's fields of every position saved closed since it was attached to a store
    whose positions table was empty (a new backtest's), instead of decoding them all back
    at the end.

    Invariant: while `valid`, `trades()` is what `TradeStore.iter_closed_positions()` would
    read, made into TradeRecords, less the positions the report leaves out (no exit price,
    no or an UNKNOWN close reason), in the same order: by close time as stored, ties in
    the order the rows were first written (rowid: storage/held_rows.py numbers held rows as
    first saved). A failed write or a rolled-back batch (`lost`) ends it: then the report
    reads the database."""

    def __init__(self) -> None:
        self.valid = True
        self.first_saved: dict[Key, int] = {}    # every position saved: its number
        self.kept: dict[Key, ClosedTrade] = {}

    def saved(self, position: Position) -> None:
        key = (position.symbol, position.key)
        order = self.first_saved.setdefault(key, len(self.first_saved))
        if position.state is not PositionState.CLOSED or position.exit_price is None \
                or position.close_reason in (None, CloseReason.UNKNOWN):
            self.kept.pop(key, None)
            return
        if position.closed_at is None:   # TradeRecord refuses it: the database read raises
            self.lost()
            return
        self.kept[key] = ClosedTrade(iso_text(position.closed_at), order,
                                     TradeRecord.from_position(position), position.exit_plan)

    def lost(self) -> None:
        self.valid = False
        self.first_saved.clear()
        self.kept.clear()

    def trades(self) -> list[ClosedTrade] | None:
        """The kept trades in the database's order; None once `lost`."""
        if not self.valid:
            return None
        return sorted(self.kept.values(), key=_closed_then_first_saved)


def _closed_then_first_saved(entry: ClosedTrade) -> tuple[str, int]:
    return entry.closed_at, entry.order
