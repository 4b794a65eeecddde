"""The backtest's equity curve in bounded memory: every point while the run is short, then
buckets of consecutive points, each kept as its lowest and highest point (in time order).

A year of 1m candles is 525,600 points (~100 MB as `EquityPoint`s); the statistics need
the curve's shape, not every flat minute. Up to `limit` points the curve is exact (the
bundled data: ~2,000); past it the bucket size doubles as often as needed, so the curve
holds about limit/2 to limit points. Keeping each bucket's extremes keeps the highest
peak and the lowest trough (the maximum drawdown is off by at most one bucket's moves);
Sharpe and Sortino are computed on the bucketed returns (measured in benchmarks/README.md).

    recorder = CurveRecorder(limit=20_000)
    recorder.add(EquityPoint(now, equity))
    curve = recorder.points()
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from trader.evolve import filler
from trader.metrics import EquityPoint

DEFAULT_LIMIT = 20_000


class CurveRecorder:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 8:
            raise ValueError(f"a curve needs room for at least 8 points, got {limit}")
        self.limit = limit
        self.bucket_size = 1                      # points per bucket: 1, then 4, 8, 16...
        self.seen = 0                             # points offered so far
        self._buckets: list[tuple[EquityPoint, ...]] = []   # each: its extremes, in time order
        self._kept = 0                            # points in _buckets
        self._open: tuple[EquityPoint, ...] = ()  # the bucket being filled (its extremes)
        self._open_count = 0                      # points offered to it

    def add(self, point: EquityPoint) -> None:
        self.seen += 1
        if self.bucket_size == 1:
            self._buckets.append((point,))        # `_close_bucket`, without the call
            self._kept += 1
        else:
            self._open = _extremes((*self._open, point))
            self._open_count += 1
            if self._open_count == self.bucket_size:
                self._close_bucket(self._open)
                self._open, self._open_count = (), 0
        if self._kept + len(self._open) > self.limit:
            self._coarsen()

    def record(self, at: datetime, equity: Decimal) -> None:
        """`add(EquityPoint(at, equity))`, a backtest's every candle: the point built by
        plain slot stores on its class's filler (trader/evolve.py `filler`, as the CSV
        reader builds a Candle), not through its `__init__`; the same value."""
        point: Any = _new(_POINT_FILLER)
        point.at = at
        point.equity = equity
        point.__class__ = EquityPoint
        self.add(point)

    def points(self) -> list[EquityPoint]:
        """The curve, in time order: at most `limit` points."""
        return [point for bucket in self._buckets for point in bucket] + list(self._open)

    def __len__(self) -> int:
        return self._kept + len(self._open)

    def _close_bucket(self, bucket: tuple[EquityPoint, ...]) -> None:
        self._buckets.append(bucket)
        self._kept += len(bucket)

    def _coarsen(self) -> None:
        """Fewer, larger buckets: single points go 4 to a bucket (2 extremes of 2 points
        would save nothing), then the bucket size doubles."""
        factor = 4 if self.bucket_size == 1 else 2
        full = len(self._buckets) - len(self._buckets) % factor
        leftover = self._buckets[full:]
        merged = [_extremes(tuple(point for bucket in self._buckets[index:index + factor]
                                  for point in bucket))
                  for index in range(0, full, factor)]
        self._open_count += len(leftover) * self.bucket_size
        self._open = _extremes(tuple(point for bucket in leftover for point in bucket)
                               + self._open) if leftover or self._open else ()
        self._buckets = merged
        self._kept = sum(len(bucket) for bucket in merged)
        self.bucket_size *= factor


def _extremes(points: tuple[EquityPoint, ...]) -> tuple[EquityPoint, ...]:
    """The lowest and the highest point, in time order (one point when they coincide)."""
    low = min(points, key=lambda point: point.equity)
    high = max(points, key=lambda point: point.equity)
    if low is high:
        return (low,)
    return (low, high) if low.at <= high.at else (high, low)


_POINT_FILLER = filler(EquityPoint)
_new = object.__new__
