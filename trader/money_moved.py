"""Money moved into or out of the account with no trade (a deposit, a withdrawal, a
transfer), as the drawdown rule takes it: each move shifts the peak once (trader/risk.py
`peak_after_move`), whether the user-data stream told it (ACCOUNT_UPDATE "bc":
trader/entry_sender.py `on_money_moved`) or the income history read it back after the
stream missed it (TRANSFER rows: trader/transfer_backfill.py). Pure; kept in the risk state.

One move, two reports, as for funding (trader/funding_backfill.py): the stream's carries no
transaction id, the history's does ("tranId", unique per income type). A row read back is
applied already when its tranId is known, or when the stream told a move of the same amount
within MATCH_WINDOW of its time (that report then answers for this row only); a move the
stream tells is applied already when such a row was read back first.

    moved = MovedMoney.from_json(None)            # nothing read yet: no history before now
    moved, new_rows = moved.read_back([], now)    # `through` is now
    moved = moved.heard(now, Decimal("1000"))     # None: read back already
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trader.exchange.base import FundingIncome

MATCH_WINDOW = timedelta(minutes=5)   # the stream's event time and the history's row time
LOOKBACK = timedelta(days=7)          # never read further back (Binance's own default)


@dataclass(frozen=True, slots=True)
class Move:
    """One move applied to the peak; `tran_id` "" when only the stream told it."""
    time: datetime
    amount: Decimal
    tran_id: str = ""

    def twin_of(self, time: datetime, amount: Decimal) -> bool:
        return self.amount == amount and abs(self.time - time) <= MATCH_WINDOW


@dataclass(frozen=True, slots=True)
class MovedMoney:
    """`through`: the income history has been read back up to here (None: never, and
    nothing before now is owed: the peak was first taken with the money in it); `moves`:
    the moves applied since `through` - 2 x MATCH_WINDOW, to match the other report."""
    through: datetime | None = None
    moves: tuple[Move, ...] = ()

    def heard(self, time: datetime, amount: Decimal) -> "MovedMoney | None":
        """The stream told a move: the ledger with it, or None when it was read back
        already (apply nothing)."""
        if any(move.tran_id and move.twin_of(time, amount) for move in self.moves):
            return None
        return replace(self, moves=(*self.moves, Move(time, amount)))

    def window_start(self, now: datetime) -> datetime | None:
        """Where a read back starts (its rows up to now); None: none owed (never read)."""
        if self.through is None:
            return None
        return max(self.through - MATCH_WINDOW, now - LOOKBACK)

    def read_back(self, rows: Sequence[FundingIncome],
                  until: datetime) -> "tuple[MovedMoney, list[FundingIncome]]":
        """The history's `rows` up to `until`: the ledger read through `until`, and the rows
        not applied yet (to apply now), oldest first."""
        moves = list(self.moves)
        known = {move.tran_id for move in moves if move.tran_id}
        fresh = []
        for row in sorted(rows, key=lambda r: (r.time, r.tran_id)):
            if row.tran_id in known:
                continue
            known.add(row.tran_id)
            twin = next((i for i, move in enumerate(moves)
                         if not move.tran_id and move.twin_of(row.time, row.amount)), None)
            if twin is not None:     # told by the stream: this report answers for this row
                moves[twin] = replace(moves[twin], tran_id=row.tran_id)
                continue
            moves.append(Move(row.time, row.amount, row.tran_id))
            fresh.append(row)
        kept = tuple(move for move in moves if move.time >= until - 2 * MATCH_WINDOW)
        return MovedMoney(until, kept), fresh

    def to_json(self) -> dict[str, Any]:
        return {"through": self.through.isoformat() if self.through else None,
                "moves": [[m.time.isoformat(), str(m.amount), m.tran_id] for m in self.moves]}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> "MovedMoney":
        if not raw:
            return cls()
        through = raw.get("through")
        return cls(datetime.fromisoformat(through) if through else None,
                   tuple(Move(datetime.fromisoformat(t), Decimal(a), i)
                         for t, a, i in raw.get("moves", ())))
