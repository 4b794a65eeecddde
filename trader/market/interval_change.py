"""Where a candle file's rows change interval: a stretch of rows one kline interval apart
(15m), then a stretch another interval apart (5m). Read as one interval, such a file runs on
with a gap warning at every step of the other stretch, or is refused at a row that does not
say why; this names the line where the second interval begins.

    change = IntervalChange(path)
    for number, candle in rows:          # in time order
        refusal = change.step(number, candle.open_time - previous_open_time)
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from trader.market.gaps import span_text

# Steps in a row one interval apart that make a stretch of candles of that interval: an hour
# of 5m candles. A file of one interval with rows missing seldom misses them so regularly
# (every other row for 12 rows on end); Binance's own files miss none but in outages.
STRETCH = 12


@dataclass(slots=True)
class IntervalChange:
    """The steps between a file's rows, seen one by one; `intervals` are the spacings that
    are candle intervals (Binance's kline intervals, in seconds), the only ones a stretch
    can be of (a 10 min step in 5m candles is one row missing, however often)."""
    path: Path
    intervals: frozenset[int]
    settled: timedelta | None = None    # the interval of the last stretch found
    settled_line: int = 0               # the line of its last row
    spacing: timedelta | None = None    # the current run of equal steps
    run: int = 0
    run_line: int = 0                   # the line of the run's first step

    def step(self, number: int, spacing: timedelta) -> str | None:
        """Why the file is refused, once the row at line `number`, `spacing` after the one
        before it, completes a stretch of another interval than the last stretch's; None
        otherwise."""
        if spacing == self.spacing:
            self.run += 1
        else:
            self.spacing, self.run, self.run_line = spacing, 1, number
        if self.run < STRETCH or spacing.total_seconds() not in self.intervals:
            return None
        if self.settled is None or self.settled == spacing:
            self.settled, self.settled_line = spacing, number
            return None
        return (f"{self.path}: line {self.run_line}: the rows change interval here, from "
                f"{span_text(self.settled)} (up to line {self.settled_line}) to "
                f"{span_text(spacing)}: candles of two intervals in one file? Keep one "
                "interval per file")
