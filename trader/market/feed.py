"""What every candle feed provides, and the watchdog over it: stale data and gaps.

`FeedMonitor` is pure (time is passed in: the exchange's, as the candles' times are; the
engine's housekeeping adds the measured clock offset to the host's). The engine tells it
about every candle and asks `check(now)` once per tick:
- stale: a symbol's next candle should have closed at last close + interval; once `now`
  is more than `stale_after` (30 s) past that, the symbol is stale: entries stop and an
  alert goes out. The issue is reported on every check while it lasts (`first` marks the
  first report) and a `resumed` issue is reported once when candles come back.
- gap: a candle whose open_time skips expected ones reports the missing open times once,
  so the engine can backfill them through `exchange.klines()` and `merge_backfill`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from loguru import logger

from trader.domain import Candle

STALE_AFTER = timedelta(seconds=30)
MAX_MISSING_LISTED = 1000


class CandleFeed(Protocol):
    """A source of closed candles (the exchange's stream/REST poll, or a replay)."""

    async def poll(self, now: datetime) -> list[Candle]:
        """Closed candles not returned before, oldest first."""


class FeedIssueKind(StrEnum):
    STALE = "stale"
    RESUMED = "resumed"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class FeedIssue:
    kind: FeedIssueKind
    symbol: str
    since: datetime            # stale: when the late candle was due (+ grace); gap: first missing
    detail: str = ""
    missing: list[datetime] = field(default_factory=list)   # gap: the missing open times
    first: bool = True         # stale: the first report of this episode


@dataclass(slots=True)
class _SymbolWatch:
    interval: timedelta | None = None
    last_open: datetime | None = None
    watched_since: datetime | None = None
    stale_reported: bool = False
    # when the symbol goes stale (`FeedMonitor._due` + stale_after; None: never), kept as
    # the candles arrive: `check` runs every tick and compares only
    stale_at: datetime | None = None
    # last_open + the last candle's interval (`next_step`): where the next candle opens
    # unless there is a gap (`on_candle`)
    next_open: datetime | None = None
    next_step: timedelta | None = None


class FeedMonitor:
    """Stale-data and gap detection over the candles a feed delivered (pure: `now` given)."""

    def __init__(self, stale_after: timedelta = STALE_AFTER) -> None:
        self.stale_after = stale_after
        self._watch: dict[str, _SymbolWatch] = {}
        self._pending: list[FeedIssue] = []
        self._tail = (timedelta(0), stale_after, stale_after)   # (interval, stale_after, sum)

    def watch(self, symbol: str, now: datetime, interval: timedelta) -> None:
        """Expect candles for `symbol` from `now` on, even before the first one arrives."""
        state = self._watch.setdefault(symbol, _SymbolWatch())
        state.interval = state.interval or interval
        state.watched_since = state.watched_since or now
        self._update_stale_at(state)

    def on_candle(self, symbol: str, candle: Candle, now: datetime) -> None:
        state = self._watch.get(symbol)
        if state is None:
            state = self._watch[symbol] = _SymbolWatch()
        interval = state.interval = candle.interval
        opened = candle.open_time
        last = state.last_open
        if last is not None:
            if opened <= last:
                self._update_stale_at(state)
                self._fill_pending_gap(symbol, opened)   # a backfilled or repeated candle
                return
            # last + interval: kept from the last candle when made with this interval
            due = state.next_open if interval is state.next_step else last + interval
            if opened > due:    # type: ignore[operator]   # next_open is set with next_step
                self._report_gap(symbol, last, candle)
        state.last_open = opened
        next_open = state.next_open = opened + interval
        state.next_step = interval
        # `_update_stale_at` inline (every candle): `_due` is the next candle's close time,
        # opened + 2 x interval (datetime arithmetic is exact: added in any order); the
        # interval + stale_after kept for the interval and stale_after it was made of
        tail = self._tail
        if tail[0] is not interval or tail[1] is not self.stale_after:
            tail = self._tail = (interval, self.stale_after, interval + self.stale_after)
        state.stale_at = next_open + tail[2]
        if state.stale_reported:
            state.stale_reported = False
            self._pending.append(FeedIssue(FeedIssueKind.RESUMED, symbol, now,
                                           f"candles resumed at {candle.close_time:%H:%M} UTC"))
            logger.info("feed resumed symbol={} candle_close={}", symbol, candle.close_time)

    def check(self, now: datetime) -> list[FeedIssue]:
        """Current stale issues plus gaps and resumptions not reported before."""
        issues, self._pending = self._pending, []
        late = [symbol for symbol, state in self._watch.items() if _late(state, now)]
        for symbol in sorted(late) if len(late) > 1 else late:   # most ticks: none
            state = self._watch[symbol]
            due = self._due(state)
            assert due is not None   # a stale_at comes from a due time
            issues.append(FeedIssue(FeedIssueKind.STALE, symbol, due + self.stale_after,
                                    f"no candle since the one due at {due:%H:%M} UTC",
                                    first=not state.stale_reported))
            if not state.stale_reported:
                logger.warning("feed stale symbol={} due={} now={}", symbol, due, now)
            state.stale_reported = True
        return issues

    def has_issues(self, now: datetime) -> bool:
        """Whether `check(now)` would report anything (most ticks: no), without building
        the report: `_late` of each, inline (every replayed candle asks)."""
        if self._pending:
            return True
        for state in self._watch.values():
            stale_at = state.stale_at
            if stale_at is not None and now > stale_at:
                return True
        return False

    def is_stale(self, symbol: str) -> bool:
        state = self._watch.get(symbol)
        return bool(state and state.stale_reported)

    def last_open(self, symbol: str) -> datetime | None:
        state = self._watch.get(symbol)
        return state.last_open if state else None

    def _update_stale_at(self, state: _SymbolWatch) -> None:
        due = self._due(state)
        state.stale_at = None if due is None else due + self.stale_after

    @staticmethod
    def _due(state: _SymbolWatch) -> datetime | None:
        """When the next candle should have closed."""
        if state.interval is None:
            return None
        if state.last_open is not None:
            return state.last_open + 2 * state.interval   # next candle's close time
        if state.watched_since is not None:
            return state.watched_since + state.interval
        return None

    def _report_gap(self, symbol: str, last_open: datetime, candle: Candle) -> None:
        missing: list[datetime] = []
        moment = last_open + candle.interval
        while moment < candle.open_time and len(missing) < MAX_MISSING_LISTED:
            missing.append(moment)
            moment += candle.interval
        count = int((candle.open_time - last_open) / candle.interval) - 1
        detail = f"{count} candle(s) missing before {candle.open_time}"
        if count > len(missing):
            detail += f" (first {len(missing)} listed)"
        logger.warning("feed gap symbol={} missing={} first={}", symbol, count, missing[0])
        self._pending.append(FeedIssue(FeedIssueKind.GAP, symbol, missing[0], detail, missing))

    def _fill_pending_gap(self, symbol: str, open_time: datetime) -> None:
        """A backfilled candle arrived: drop it from gap issues not yet reported."""
        for index, issue in enumerate(self._pending):
            if issue.kind is FeedIssueKind.GAP and issue.symbol == symbol \
                    and open_time in issue.missing:
                remaining = [m for m in issue.missing if m != open_time]
                if remaining:
                    self._pending[index] = FeedIssue(issue.kind, symbol, remaining[0],
                                                     issue.detail, remaining)
                else:
                    del self._pending[index]
                return


def _late(state: _SymbolWatch, now: datetime) -> bool:
    """Whether the symbol's next candle is overdue at `now` (stale)."""
    return state.stale_at is not None and now > state.stale_at


def merge_backfill(existing: Sequence[Candle], fetched: Sequence[Candle]) -> list[Candle]:
    """`existing` plus the closed candles of `fetched` it lacks, in open_time order.

    Candles already present win (no duplicates); fetched candles of another symbol or
    still open are ignored.
    """
    symbol = existing[0].symbol if existing else None
    merged = {c.open_time: c for c in fetched
              if c.closed and (symbol is None or c.symbol == symbol)}
    merged.update({c.open_time: c for c in existing})
    return [merged[t] for t in sorted(merged)]
