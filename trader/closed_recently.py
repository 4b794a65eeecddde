"""The positions closed lately, kept in memory by the store that saves them.

The daily summary asks every day for the positions closed in the last 24 h; read from the
database, each is a row parsed back into a `Position` (~0.5 M instructions: ~2 % of a
backtest with trades). This process is the positions table's only writer
(trader/instance_lock.py), so after one read the store keeps the answer up to date with its
own saves instead.

Invariant: while `horizon` is set, `closed` holds every position saved CLOSED whose close
time, as stored (ISO text: the database compares that text), is at or after `horizon`,
and nothing else. A read for an earlier time than `horizon` goes to the database again.
"""

from trader.position import Position, PositionState

Key = tuple[str, str]     # (symbol, position key), the table's primary key


class ClosedRecently:
    def __init__(self) -> None:
        self.horizon: str | None = None      # None: not read yet (or forgotten)
        self.closed: dict[Key, tuple[str, Position]] = {}   # key -> (closed_at text, it)

    def knows(self, since: str) -> bool:
        """Whether every position closed at or after `since` (ISO text) is known here."""
        return self.horizon is not None and since >= self.horizon

    def fill(self, since: str, positions: list[Position]) -> None:
        """What the database answered for `since`: every position closed at or after it."""
        self.closed = {}
        self.horizon = since
        for position in positions:
            self.saved(position)

    def saved(self, position: Position) -> None:
        """A position as just saved: kept when it is closed inside the horizon, else dropped
        (a record saved again in another state, or closed earlier)."""
        if self.horizon is None:
            return
        key = (position.symbol, position.key)
        closed_at = position.closed_at
        if position.state is PositionState.CLOSED and closed_at is not None:
            text = closed_at.isoformat()
            if text >= self.horizon:
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


def _closed_text(entry: tuple[str, Position]) -> str:
    return entry[0]
