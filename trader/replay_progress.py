"""How far `tradebot run --replay` is. At its default speed (60 feed seconds per second) a
replay of a few days takes an hour, with few log lines between trades: without a word now
and then it looks hung. On a terminal (and unless --no-progress) the replay logs one status
line when it starts and one every STATUS_SECONDS of wall time after:

    replay started candles=668 symbols=BTCUSDT from=2024-03-01 00:00 UTC speed=60
    replay progress candles=80/668 (12%) at=2024-03-01 06:40 UTC left=about 49 min

`left` is the wall time the candles still to come would take at the pace seen so far (like
`tradebot backtest`'s progress bar). Log lines, not a progress bar: the agent's own log
lines (trades, alerts) go to the same terminal and would tear a bar apart.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from loguru import logger

from trader.domain import Candle

STATUS_SECONDS = 30.0


class ReplayProgress:
    """Counts the replayed candles; `enabled=False` makes every call a no-op.
    `wall` is a monotonic clock in seconds (time.monotonic; tests pass their own)."""

    def __init__(self, candles: Mapping[str, Sequence[Candle]], speed: float, *,
                 enabled: bool, wall: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.total = sum(len(rows) for rows in candles.values())
        self.done = 0
        self._wall = wall
        self._started = self._last_said = wall()
        if enabled and self.total:
            first = min(rows[0].open_time for rows in candles.values() if rows)
            logger.info("replay started candles={} symbols={} from={} speed={:g}", self.total,
                        ",".join(sorted(candles)), _moment(first), speed)

    def advance(self, batch: Sequence[Candle]) -> None:
        """`batch` was replayed: say where the replay is if STATUS_SECONDS have passed."""
        self.done += len(batch)
        if not self.enabled or not batch:
            return
        now = self._wall()
        if now - self._last_said < STATUS_SECONDS:
            return
        self._last_said = now
        left = (now - self._started) / self.done * (self.total - self.done)
        logger.info("replay progress candles={}/{} ({:.0%}) at={} left=about {}", self.done,
                    self.total, self.done / max(self.total, 1), _moment(batch[-1].close_time),
                    _duration(left))


def _moment(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _duration(seconds: float) -> str:
    """37 s, 12 min, 3 h 05 min."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds / 60 + 0.5)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
