"""Money moved in or out that the user-data stream missed, read back from the exchange's
income history (its USDT rows of money moved: deposits, withdrawals, transfers between
wallets and accounts, binance_codec.MOVE_TYPES, one request for every kind) for the
drawdown rule's peak (trader/money_moved.py, trader/risk_state.py `on_read_back`).

At start-up (before the balance is read: the peak moves before the equity that shows the
money is seen), after the stream reconnects and, while it stays down, every POLL_EVERY, as
funding is read back (trader/funding_backfill.py). From a reconnect or a failed read until
a read back succeeds (`RiskState.money_unread`), and while the stream is down, a balance
read does not raise the peak (`RiskState.update_fraction`).

    backfill = TransferBackfill(exchange, risk, clock)         # due at once
    await backfill.sync()                                       # nothing asked unless due
"""

from datetime import datetime

from loguru import logger

from trader.clock import Clock
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.funding_backfill import POLL_EVERY
from trader.risk_state import RiskState


class TransferBackfill:
    """Reads back the money moved the stream missed; see the module docstring."""

    def __init__(self, exchange: Exchange, risk: RiskState, clock: Clock) -> None:
        self.exchange, self.risk, self.clock = exchange, risk, clock
        self.wanted = True                    # at start-up: what moved meanwhile
        self.last_read: datetime | None = None
        exchange.on_stream_reconnect(self.stream_reconnected)

    def stream_reconnected(self) -> None:
        self.wanted = True
        self.risk.money_unread = True

    def due(self, now: datetime) -> bool:
        if self.wanted:
            return True
        return not self.exchange.streaming and (
            self.last_read is None or now - self.last_read >= POLL_EVERY)

    async def sync(self) -> None:
        """Read the history since the peak last took it (`MovedMoney.window_start`; never
        read before: nothing is owed, it counts as read now). A failed read is logged and
        tried again at the next call, from the same start."""
        now = self.clock.now()
        if not self.due(now):
            return
        start = self.risk.moved.window_start(now)
        rows = []
        if start is not None:
            try:
                rows = await self.exchange.transfer_income(start, now)
            except (ExchangeError, UnknownOutcome) as exc:
                logger.warning("money moved not read back error={}", exc)
                self.risk.money_unread = True
                return
        self.risk.on_read_back(rows, now)
        self.wanted, self.last_read = False, now
        if rows:
            logger.info("money moved read back rows={} since={}", len(rows),
                        start.isoformat() if start else "-")
