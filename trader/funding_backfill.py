"""Funding the user-data stream missed, read back from the exchange's income history.

Live, funding is journaled from the stream (ACCOUNT_UPDATE with reason FUNDING_FEE:
`PositionJournal.record_funding`). A payment settled while the stream was down, or while the
agent was not running, never arrives there. At start-up (once positions are protected), after
the stream reconnects and, while it stays down, every POLL_EVERY, `FundingBackfill.sync` reads
the exchange's funding history since the last payment journaled (or since the opening of the
earliest position that could have paid; never more than LOOKBACK back) and journals what is
missing: a trade's net, /pnl and the daily summary count it.

    backfill = FundingBackfill(exchange, store, clock, ["BTCUSDT"])   # due at once
    added = await backfill.sync(open_positions)                        # 0 unless due

One payment, two reports. The stream's carries no transaction id, the history's does
(Binance: "tranId", unique per income type). A payment read from the history is journaled
already when its tranId is, or when the stream reported one of the same amount for the same
symbol (or for none: Binance's cross-margin ACCOUNT_UPDATE names no position) within
MATCH_WINDOW of its time, each stream report answering for one payment only. The stream path
asks the same question the other way round (`already_read_back`), so a late stream event of a
payment read back first is not journaled twice either. Sound because a symbol pays funding at
most once an hour (Binance's shortest funding interval), far more than MATCH_WINDOW apart.
"""

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from loguru import logger

from storage import SaveStateFailure
from trader.clock import Clock
from trader.domain import ZERO
from trader.exchange.base import Exchange, ExchangeError, FundingIncome, UnknownOutcome
from trader.position import Position
from trader.trade_store import FundingPayment, TradeStore

MATCH_WINDOW = timedelta(minutes=5)   # the stream's event time and the history's row time
LOOKBACK = timedelta(days=7)          # Binance's own default window for the income history
POLL_EVERY = timedelta(minutes=15)    # while the stream stays down, funding is read this often
FUNDING_ASSET = "USDT"                # what the stream path counts too (binance_event_codec)

JournaledFunding = tuple[FundingPayment, str]   # the payment, its tranId ("" from the stream)


def same_payment(a: FundingPayment, b: FundingPayment) -> bool:
    """Two reports of one payment: the same amount, the same symbol (or one that names
    none), at most MATCH_WINDOW apart."""
    return a.amount == b.amount and (a.symbol == b.symbol or not a.symbol or not b.symbol) \
        and abs(a.at - b.at) <= MATCH_WINDOW


def as_payment(income: FundingIncome) -> FundingPayment:
    return FundingPayment(income.time, income.symbol, income.amount)


def unrecorded(incomes: Sequence[FundingIncome],
               journal: Sequence[JournaledFunding]) -> list[FundingIncome]:
    """The payments of `incomes` the journal does not hold yet (see the module docstring).
    Rows whose tranId is known are set aside first, so they never take a stream report
    that answers for another payment."""
    known = {tran_id for _, tran_id in journal if tran_id}
    reported = [payment for payment, tran_id in journal if not tran_id]
    missing = []
    for income in sorted((i for i in incomes if i.tran_id not in known),
                         key=lambda i: (i.time, i.tran_id)):
        payment = as_payment(income)
        twin = next((r for r in reported if same_payment(payment, r)), None)
        if twin is not None:
            reported.remove(twin)           # one stream report answers for one payment
        elif income.tran_id not in known:
            known.add(income.tran_id)
            missing.append(income)
    return missing


def already_read_back(payment: FundingPayment, journal: Sequence[JournaledFunding]) -> bool:
    """True when the stream's `payment` was journaled from the income history already."""
    return any(tran_id and same_payment(payment, read) for read, tran_id in journal)


def window_start(journal: Sequence[JournaledFunding], symbols: Sequence[str],
                 positions: Iterable[Position], now: datetime) -> datetime | None:
    """Where to read the history from: the last payment journaled for `symbols` (what came
    before it was journaled or read back already), else the opening of the earliest of
    `positions` (open, or closed lately) on them; never before now - LOOKBACK. None when
    nothing could have paid funding."""
    floor = now - LOOKBACK
    journaled = [payment.at for payment, _ in journal if payment.at >= floor
                 and (payment.symbol in symbols or not payment.symbol)]
    if journaled:
        return max(journaled)
    opened = [position.opened_at for position in positions if position.symbol in symbols]
    return max(min(opened), floor) if opened else None


class FundingBackfill:
    """Reads back the funding the stream missed; see the module docstring."""

    def __init__(self, exchange: Exchange, store: TradeStore, clock: Clock,
                 symbols: Sequence[str]) -> None:
        self.exchange = exchange
        self.store = store
        self.clock = clock
        self.symbols = list(symbols)
        self.wanted = True                          # at start-up: what was paid meanwhile
        self.owed_since: datetime | None = None     # a read that failed: from there next time
        self.last_read: datetime | None = None
        exchange.on_stream_reconnect(self.stream_reconnected)

    def stream_reconnected(self) -> None:
        self.wanted = True

    def due(self, now: datetime) -> bool:
        if self.wanted:
            return True
        return not self.exchange.streaming and (
            self.last_read is None or now - self.last_read >= POLL_EVERY)

    async def sync(self, positions: Iterable[Position]) -> int:
        """Journal the payments the stream missed since the window's start; how many.
        Nothing is asked unless due. A failed read (ExchangeError, UnknownOutcome, the
        database) is logged and tried again at the next call, from the same start; one bad
        row is logged and skipped (binance_codec.funding_from_income)."""
        now = self.clock.now()
        if not self.due(now):
            return 0
        try:
            journal = self.store.funding_journal(now - LOOKBACK - 2 * MATCH_WINDOW)
            candidates = [*positions, *self.store.closed_positions(now - LOOKBACK)]
        except sqlite3.Error as exc:
            logger.error("funding journal unreadable, history not read back error={}", exc)
            return 0
        start = window_start(journal, self.symbols, candidates, now)
        if self.owed_since is not None:
            start = min(start or self.owed_since, self.owed_since)
        added = 0 if start is None else await self._read_back(start, now, journal)
        if added is None:
            return 0
        self.wanted, self.last_read = False, now
        return added

    async def _read_back(self, start: datetime, now: datetime,
                         journal: Sequence[JournaledFunding]) -> int | None:
        """None when the read or a write failed (owed from `start`), else how many."""
        try:
            # the window widened both ways: event time vs. row time, our clock vs. Binance's
            incomes = await self.exchange.funding_income(start - MATCH_WINDOW,
                                                         now + MATCH_WINDOW)
        except (ExchangeError, UnknownOutcome) as exc:
            self.owed_since = start
            logger.warning("funding history not read, tried again at the next "
                           "reconciliation since={} error={}", start.isoformat(), exc)
            return None
        missing = unrecorded(self._ours(incomes), journal)
        for income in missing:
            if not self._journal(income):
                self.owed_since = start
                return None
        self.owed_since = None
        if missing:
            logger.warning("funding the stream missed, read back from the income history "
                           "count={} total={} since={}", len(missing),
                           sum((i.amount for i in missing), ZERO), start.isoformat())
        return len(missing)

    def _journal(self, income: FundingIncome) -> bool:
        """Journal one payment read back; False when the write failed (counted by the
        store's write health). Rolled back with a unit of work (/wake and /shutdown
        reconcile inside theirs), it is journaled again by the next tick unless the journal
        holds it by then (Rewrites, storage/unit_of_work.py): with the stream up, the next
        read-back is due only at a reconnect."""
        try:
            self.store.record_funding(as_payment(income), tran_id=income.tran_id)
        except SaveStateFailure as exc:
            logger.error("funding not saved symbol={} tran_id={} amount={} error={}",
                         income.symbol, income.tran_id, income.amount, exc)
            return False
        self.store.unit.rewrites.written(("funding read back", income.tran_id),
                                         partial(self._journal_again, income))
        return True

    def _journal_again(self, income: FundingIncome) -> None:
        try:
            journal = self.store.funding_journal(income.time - 2 * MATCH_WINDOW)
        except sqlite3.Error as exc:
            logger.error("funding journal unreadable, read back again next time error={}",
                         exc)
            self.wanted = True
            return
        if unrecorded([income], journal) and not self._journal(income):
            self.wanted = True          # the next reconciliation reads the history again

    def _ours(self, incomes: Sequence[FundingIncome]) -> list[FundingIncome]:
        """Our symbols' (or no symbol's, as the stream path keeps them) USDT payments."""
        ours = []
        for income in incomes:
            if income.symbol and income.symbol not in self.symbols:
                continue
            if income.asset != FUNDING_ASSET:
                logger.info("funding in another asset not journaled symbol={} asset={} "
                            "amount={}", income.symbol, income.asset, income.amount)
                continue
            ours.append(income)
        return ours
