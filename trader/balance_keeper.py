"""The account balance as last read from the exchange, read again when due, and the equity
snapshots taken from it (the /chart curve, the risk fraction's peak).

An exchange that knows its own balance exactly (the paper exchange: `balance_current`) is
not read again on the timer while it vouches that the last answer is still the answer (a
replay moves the clock 5 minutes a candle: the timer is due every candle, and a flat
account's balance never moves). Binance has no such method: read on the timer.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from trader.clock import Clock
from trader.domain import Balance
from trader.exchange.base import Exchange
from trader.executor import Executor
from trader.state_writes import StateWrites
from trader.trade_store import TradeStore

READ_EVERY_STREAMING = timedelta(seconds=60)
READ_EVERY_POLLING = timedelta(seconds=10)
EQUITY_EVERY = timedelta(minutes=1)


class BalanceKeeper:
    """`balance` (None until the first read) and when it was read (`read_at`, engine time)."""

    def __init__(self, exchange: Exchange, executor: Executor, store: TradeStore, clock: Clock,
                 writes: StateWrites) -> None:
        self.exchange = exchange
        self.executor = executor
        self.store = store
        self.clock = clock
        self.writes = writes
        self.balance: Balance | None = None
        self.read_at: datetime | None = None
        self.last_equity_at: datetime | None = None
        # A position closed since the balance was read: the balance held is the one of before
        # (its margin counted used, its result not in) until read again, which a Retry-After
        # (an IP ban: up to 3 days) may forbid; /status then says the equity's age. (A flag,
        # not a time: `due` reads it every tick, every replayed candle.)
        self.read_before_close = False
        # Balance -> whether a read would answer that very Balance now (None: no exchange
        # can tell, read on the timer)
        self.vouches: Callable[[Balance], bool] | None = getattr(exchange, "balance_current",
                                                                 None)

    def due(self, account_events: bool) -> bool:
        """Whether the balance is to be read now: the stream reported account events, or
        60 s passed while streaming (10 s while polling); the account endpoint is heavy
        (weight 5): it is read when something happened. Not due either when the exchange
        vouches that a read would give the balance held (`vouches`): as good as a read,
        `read_at` moves on (what /balance shows)."""
        if account_events or self.read_at is None or self.read_before_close:
            return True
        every = READ_EVERY_STREAMING if self.exchange.streaming else READ_EVERY_POLLING
        now = self.clock.now()
        if now - self.read_at < every:
            return False
        vouches, balance = self.vouches, self.balance
        if vouches is not None and balance is not None and vouches(balance):
            self.read_at = now
            return False
        return True

    def mark_due(self) -> None:
        """Read the balance at the next tick: a position closed (its margin is free again,
        its result realized), and a close found over REST brings no account event."""
        self.read_before_close = True

    async def refresh(self) -> Balance:
        """Read the balance now. Raises ExchangeError / UnknownOutcome from the read."""
        # (both at the ask, as `read_at` always was: a failed read is not asked again every
        # tick, and /status's age is then that of the ask)
        self.read_at = self.clock.now()
        self.read_before_close = False
        self.balance = await self.executor.read(self.exchange.balance)
        return self.balance

    def available_margin(self) -> Decimal | None:
        """The available balance as last read (a leg's margin estimate: trader/risk.py)."""
        return self.balance.available if self.balance is not None else None

    def equity(self) -> Decimal:
        """The equity as last read (USDT); 0 before the first read."""
        return self.balance.equity if self.balance else Decimal(0)

    def record_equity(self) -> None:
        """Equity snapshot at most once a minute of engine time (chart, risk fraction)."""
        if self.balance is None:
            return
        now = self.clock.now()
        if self.last_equity_at is not None and now - self.last_equity_at < EQUITY_EVERY:
            return
        self.last_equity_at = now
        balance = self.balance
        self.writes.persist(lambda: self.store.record_equity(now, balance.equity,
                                                             balance.wallet), "equity")
