"""A leverage changed by hand that no stream told: an ACCOUNT_CONFIG_UPDATE sent while the
user-data stream was down is lost, and while it is off nothing is told at all. The leverage
of such symbols is read again (GET /fapi/v1/symbolConfig) at their next position read."""

from datetime import datetime, timedelta

from loguru import logger

from trader.clock import Clock
from trader.exchange.base import UnknownOutcome
from trader.exchange.binance_account import BinanceAccount
from trader.exchange.binance_streams import BinanceStreams


class LeverageWatch:
    def __init__(self, account: BinanceAccount, streams: BinanceStreams, clock: Clock,
                 period: timedelta) -> None:
        """`period`: TRADEBOT_RECONCILE_SECONDS, how often an open position's leverage is
        read again while the user-data stream is off or down."""
        self._account, self._streams, self._clock = account, streams, clock
        self._period = period
        # Symbols whose leverage may have changed unheard: an ACCOUNT_CONFIG_UPDATE sent
        # while the user-data stream was down is lost; read again at the next position read.
        self.unheard: set[str] = set()
        # When each symbol's leverage was last read again (`due`).
        self._read_at: dict[str, datetime] = {}

    def stream_reconnected(self) -> None:
        self.unheard = set(self._account.leverage)

    def due(self, symbol: str) -> bool:
        """Whether the leverage of a symbol with an open position is read again: while the
        user-data stream is off or down, once every TRADEBOT_RECONCILE_SECONDS (nothing
        would tell a change by hand: its ACCOUNT_CONFIG_UPDATE goes to no socket). One
        symbolConfig read (weight 5) per open position and period while polling, none
        while the stream is live; a flat symbol's leverage is set again at its next entry
        (trader/entry_sender.py `_ensure_leverage`). One that start() could not read (a
        refused symbolConfig) is read on the same cadence: skipped, the position showed the
        configured leverage for good."""
        if self._streams.user_live:
            return False
        now = self._clock.now()
        read_at = self._read_at.setdefault(symbol, now)
        return now - read_at >= self._period

    async def read_again(self, symbol: str) -> None:
        """After a stream outage, or while polling (`due`): the leverage a change by
        hand may have set meanwhile (on an open position too: Binance applies it to the
        position), from GET /fapi/v1/symbolConfig. A failed read after an outage is tried
        again at the next position read; while polling, at the next period."""
        self._read_at[symbol] = self._clock.now()
        known = self._account.leverage.get(symbol)
        try:
            leverage = await self._account.read_leverage(symbol)
        except UnknownOutcome as exc:
            logger.warning("leverage not read again symbol={} error={}", symbol, exc)
            return
        if leverage is None:
            return
        self.unheard.discard(symbol)
        if leverage != known:
            logger.warning("leverage changed unheard (user-data stream down or off) symbol={} "
                           "was={} now={}", symbol, known, leverage)
