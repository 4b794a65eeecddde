"""Missing rows in a candle series: consecutive open times further apart than the interval.

    tally = GapTally()
    for candle in candles:
        tally.add(candle)
    tally.warning("XRPUSDT")   # 'XRPUSDT: 1 gap in the data, the largest 16 h 40 min at ...'
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from trader.domain import Candle


@dataclass(slots=True)
class GapTally:
    """How many gaps a series has and its largest one, counted candle by candle (a year of
    1m candles is never held for it). `largest_at` is the open time of the first candle
    missing in the largest gap; a candle out of time order is not counted (the loader
    refuses it)."""
    count: int = 0
    largest: timedelta = timedelta(0)
    largest_at: datetime | None = None
    last_open: datetime | None = None

    def add(self, candle: Candle) -> None:
        if self.last_open is not None:
            missing = candle.open_time - self.last_open - candle.interval
            if missing > timedelta(0):
                self.count += 1
                if missing > self.largest:
                    self.largest, self.largest_at = missing, self.last_open + candle.interval
        self.last_open = candle.open_time

    def warning(self, symbol: str) -> str | None:
        """One line for the user, or None when the series has no gap."""
        if not self.count or self.largest_at is None:
            return None
        gaps = "1 gap" if self.count == 1 else f"{self.count:,} gaps"
        return (f"{symbol}: {gaps} in the data, the largest {span_text(self.largest)} at "
                f"{self.largest_at:%Y-%m-%d %H:%M}; the engine trades across it")


def span_text(span: timedelta) -> str:
    """'16 h 40 min', '2 days 3 h', '5 min': the non-zero parts, to the minute."""
    minutes = int(span.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "day" if days == 1 else "days"), (hours, "h"), (minutes, "min")]
    return " ".join(f"{value} {unit}" for value, unit in parts if value) or "0 min"
