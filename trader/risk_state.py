"""The risk state: the equity-linked risk fraction and the equity peak it is judged
against, with the money moved in or out that shifted the peak, kept in the database
under "risk" so a restart measures the drawdown from the same peak.

The rules are pure (trader/risk.py `risk_fraction`, `peak_after_move`;
trader/money_moved.py); this keeps their state, saves it and sets the
`risk_fraction_active` gauge. Entries are sized with `fraction()` (trader/entry_sender.py).
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from loguru import logger

from storage import SaveStateFailure
from trader.clock import Clock
from trader.domain import Balance
from trader.exchange.base import Exchange, ExchangeEvent, FundingIncome, MoneyMoved
from trader.money_moved import MovedMoney
from trader.risk import peak_after_move, risk_fraction
from trader.telemetry import Counters
from trader.trade_store import TradeStore

RISK_KEY = "risk"


class RiskState:
    def __init__(self, base: Decimal, store: TradeStore, counters: Counters,
                 clock: Clock, exchange: Exchange) -> None:
        """`base`: TRADEBOT_RISK_BASE, the fraction at a new high and before any is saved;
        `exchange`: whether its user-data stream is up (`streaming`): while it is down, a
        balance read may show money no report told yet."""
        self.base = base
        self.exchange = exchange
        self.store = store
        self.counters = counters
        self.clock = clock
        self.saved = self.store.get(RISK_KEY, {})
        self._equity: Decimal | None = None   # the equity `saved` was last updated for
        # `saved`'s peak as a Decimal (parsed once, then the value it was made from), and the
        # (peak, fraction) objects whose text `saved` holds (None: not known to hold any)
        self._peak = Decimal(self.saved.get("peak", "0"))
        self._kept: tuple[Decimal, Decimal] | None = None
        # the money moved in or out the peak has taken (trader/money_moved.py), kept with it
        self.moved = MovedMoney.from_json(self.saved.get("moved"))
        # a read back of the money moved is owed (the stream reconnected, or a read back
        # failed, since the last one: trader/transfer_backfill.py); while it is, or while
        # the stream is down, a balance read may show money no report told yet
        self.money_unread = False
        # the highest equity such a read showed at or above the peak, held until a read back
        # finds that nothing moved (None: none, or a move was taken since)
        self._held_high: Decimal | None = None
        # the fraction the `risk_fraction_active` gauge was last set to, and for which symbols
        self._gauged: tuple[Decimal, tuple[str, ...]] | None = None

    def fraction(self) -> Decimal:
        """The risk fraction entries are sized with: the saved one, the base before any."""
        return Decimal(self.saved.get("fraction", str(self.base)))

    def update_fraction(self, balance: Balance, symbols: Iterable[str], *,
                        settled: bool = True) -> None:
        """The equity-linked risk fraction (trader/risk.py `risk_fraction`): the base
        (TRADEBOT_RISK_BASE, 2.5 %) at a new high, 1.5 % (or the base if lower) after a 5 %
        drawdown. A balance that may hold money moved no report told yet (`settled` False:
        read before the tick took the stream's events; a read back owed; the stream down)
        never raises the peak nor restores the base: the report would shift the peak again
        (`_hold_rise`)."""
        # `Balance.equity` is a property that adds two Decimals on every read: read once
        # (every in-position candle brings a new equity)
        equity = balance.equity
        if equity == self._equity:
            return          # the same equity gives the same fraction (a flat account)
        base = self.base
        kept = self._kept
        current = kept[1] if kept is not None else Decimal(self.saved.get("fraction", str(base)))
        if self._peak > 0 and equity >= self._peak and (
                not settled or self.money_unread or not self.exchange.streaming):
            self._hold_rise(equity, settled)
            peak, fraction = self._peak, current
        else:
            self._equity = equity
            peak = max(self._peak, equity)
            fraction = risk_fraction(equity, peak, current, base=base)
        if kept is None or peak is not kept[0] or fraction is not kept[1]:
            # (the very objects `saved` was last made from give the same text: nothing new)
            self._save(peak, fraction)
        gauged = self._gauged
        names = tuple(symbols)
        if gauged is not None and gauged[0] is fraction and gauged[1] == names:
            # The gauge shows this very fraction for these symbols already: nothing else
            # sets it, and a symbol's counters row, once made, is never dropped.
            return
        self._gauged = (fraction, names)
        for symbol in names:
            self.counters.set(symbol, "risk_fraction_active", str(fraction))

    def on_money_moved(self, events: Iterable[ExchangeEvent]) -> None:
        """Money moved in or out with no trade (a deposit, a withdrawal, a transfer:
        MoneyMoved) shifts the drawdown rule's peak by as much (trader/risk.py
        `peak_after_move`), saved with the risk state: the drawdown measures trading only.
        Taken before the tick's balance read, which shows the money already. A move the
        income history read back first is not taken twice (trader/money_moved.py)."""
        for event in events:
            if isinstance(event, MoneyMoved):
                self.moved, read_already = self.moved.heard(event.time, event.amount)
                if read_already:
                    logger.info("money moved read back already reason={} amount={}",
                                event.reason, event.amount)
                    self._save(self._peak, self._current_fraction())
                    continue
                self._shift_peak(event.amount, event.reason)

    def on_read_back(self, rows: list[FundingIncome], until: datetime) -> None:
        """The income history's money moved up to `until` (trader/transfer_backfill.py): the
        rows not taken yet shift the peak; the history counts as read through `until`."""
        self.moved, fresh = self.moved.read_back(rows, until)
        for row in fresh:
            self._shift_peak(row.amount, f"read back ({row.tran_id})")
        self.money_unread = False
        held, self._held_high = self._held_high, None
        if held is None:
            self._save(self._peak, self._current_fraction())
            return
        # Nothing moved since the high was read (a move clears it): trading made it
        peak = max(self._peak, held)
        logger.info("risk peak rose to the equity held until read back peak={} was={}",
                    peak, self._peak)
        self._save(peak, risk_fraction(held, peak, self._current_fraction(), base=self.base))
        self._equity = None

    def _hold_rise(self, equity: Decimal, settled: bool) -> None:
        """A balance read at or above the peak that may hold money moved no report told yet:
        the peak stays and the fraction with it. While reports are owed (the stream down, a
        read back owed), its equity is held for the next read back: a new high of trading
        when nothing moved meanwhile (`on_read_back`). A read before the tick took the
        stream's events (`settled` False) holds nothing: the next tick's read judges."""
        self._equity = None        # the next read of this equity judges it again
        if settled and (self._held_high is None or equity > self._held_high):
            self._held_high = equity
        logger.debug("risk peak held equity={} peak={} unread={} streaming={}", equity,
                     self._peak, self.money_unread, self.exchange.streaming)

    def _shift_peak(self, moved: Decimal, reason: str) -> None:
        """The peak moved by `moved` USDT for `reason`; the fraction is judged against it at
        the next balance read. An equity held (`_hold_rise`) is dropped: whether the move is
        in it is not known."""
        peak = peak_after_move(self._peak, moved)
        logger.info("risk peak moved with money moved reason={} amount={} peak={} was={}",
                    reason, moved, peak, self._peak)
        self._held_high = None
        self._save(peak, self._current_fraction())
        self._equity = None

    def _current_fraction(self) -> Decimal:
        kept = self._kept
        return kept[1] if kept is not None else \
            Decimal(self.saved.get("fraction", str(self.base)))

    def _save(self, peak: Decimal, fraction: Decimal) -> None:
        fresh: dict[str, Any] = {"peak": str(peak), "fraction": str(fraction)}
        moved = self.moved
        if moved.through is not None or moved.moves:
            fresh["moved"] = moved.to_json()
        if fresh != self.saved:
            self.saved = fresh
            self._write()
        self._peak, self._kept = peak, (peak, fraction)

    def _write(self) -> None:
        """Save `saved` as it is now; one that does not reach the disk (failed, or rolled
        back with the unit of work) is saved again by the next tick (storage/unit_of_work.py
        Rewrites): a restart must not measure the drawdown from an older, lower peak."""
        rewrites = self.store.unit.rewrites
        risk = self.saved
        try:
            # Held until the unit's (or a replay batch's) commit, as any record saved with
            # `upsert_later`: the last one of the unit is written then, once (a rising equity
            # makes a new peak nearly every in-position candle; `put` wrote each at once)
            self.store.put_later(RISK_KEY, lambda: risk, self.clock.now())
        except SaveStateFailure as exc:
            logger.error("risk state not saved error={}", exc)
            rewrites.failed(RISK_KEY, self._write)
        else:
            rewrites.written(RISK_KEY, self._write)
