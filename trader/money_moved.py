"""Money moved into or out of the account with no trade (a deposit, a withdrawal, a
transfer), as the drawdown rule takes it: each move shifts the peak once (trader/risk.py
`peak_after_move`), whether the user-data stream told it (ACCOUNT_UPDATE "bc":
trader/risk_state.py `on_money_moved`) or the income history read it back after the
stream missed it (trader/transfer_backfill.py). Pure; kept in the risk state.

One move, two reports, as for funding (trader/funding_backfill.py): the stream's carries no
transaction id, the history's does ("tranId", unique per income type: the row's `tran_id`
is "<incomeType>:<tranId>", binance_codec.money_moved_rows). Each report answers for one
move at most: a row read back is applied already when its id is known, or when a report of
the stream not answering for any row yet told a move of the same amount within MATCH_WINDOW
of its time (that report then answers for this row); a move the stream tells is applied
already when such a row, not answered for yet, was read back first and the report comes
from before that read (the row is then answered for: a second move of the same amount is
another move; a report from after the read is of a move the read could not see).

    moved = MovedMoney.from_json(None)            # nothing read yet: no history before now
    moved, new_rows = moved.read_back([], now)    # `through` is now
    moved, read_already = moved.heard(now, Decimal("1000"))
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from trader.exchange.base import FundingIncome

MATCH_WINDOW = timedelta(minutes=5)   # the stream's event time and the history's row time
# A report the stream tells after a read back is of a row that read had only if it comes
# from before the read (its row is there); the read's time is the host's, the report's
# Binance's: this much apart at most (trader/clock.py measures the offset, well under it)
CLOCK_SLACK = timedelta(seconds=30)
LOOKBACK = timedelta(days=7)          # never read further back (Binance's own default)


@dataclass(frozen=True, slots=True)
class Move:
    """One move applied to the peak; `tran_id` "" when only the stream told it; `heard`:
    the stream told it (a row read back then answers for its report)."""
    time: datetime
    amount: Decimal
    tran_id: str = ""
    heard: bool = False

    def twin_of(self, time: datetime, amount: Decimal) -> bool:
        return self.amount == amount and abs(self.time - time) <= MATCH_WINDOW


@dataclass(frozen=True, slots=True)
class MovedMoney:
    """`through`: the income history has been read back up to here (None: never, and
    nothing before now is owed: the peak was first taken with the money in it); `moves`:
    the moves applied since `through` - 2 x MATCH_WINDOW, to match the other report."""
    through: datetime | None = None
    moves: tuple[Move, ...] = ()

    def heard(self, time: datetime, amount: Decimal) -> "tuple[MovedMoney, bool]":
        """The stream told a move: the ledger with its report, and whether the move was
        read back already (apply nothing then)."""
        moves = list(self.moves)
        after_read = self.through is not None and time > self.through + CLOCK_SLACK
        twin = None if after_read else next(
            (i for i, move in enumerate(moves)
             if move.tran_id and not move.heard and move.twin_of(time, amount)), None)
        if twin is not None:
            moves[twin] = replace(moves[twin], heard=True)
            return replace(self, moves=tuple(moves)), True
        return replace(self, moves=(*moves, Move(time, amount, heard=True))), False

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
                "moves": [[m.time.isoformat(), str(m.amount), m.tran_id, m.heard]
                          for m in self.moves]}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> "MovedMoney":
        if not raw:
            return cls()
        through = raw.get("through")
        return cls(datetime.fromisoformat(through) if through else None,
                   tuple(_move(*saved) for saved in raw.get("moves", ())))


def _move(time: str, amount: str, tran_id: str, heard: bool = False) -> Move:
    """A move as `to_json` saved it. Saved before the ids named their income type (every
    row read back was a TRANSFER one) and the reports were marked (a row then answers for
    one stream report more, as it did)."""
    if tran_id and ":" not in tran_id:
        tran_id = f"TRANSFER:{tran_id}"
    return Move(datetime.fromisoformat(time), Decimal(amount), tran_id, heard)
