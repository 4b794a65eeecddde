"""The engine's periodic duties, each gated by engine time so a tick stays cheap and each
inside its own boundary (one failing job skips only itself): the feed watchdog (stale data
blocks entries and alerts; gaps are backfilled), the funding breaker, the hourly
symbol-rules refresh (a symbol no longer TRADING takes no entries), cleanup of intents
and of the order tracker's finished orders older than 6 h, the telemetry log line, the
live invariant monitor (trader/invariant_monitor.py, every TRADEBOT_INVARIANT_CHECK_TICKS
ticks), and the daily summary.
"""

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from loguru import logger

from storage import SaveStateFailure
from trader import breaker_rules
from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.config import INTERVAL_SECONDS, Settings
from trader.containment import Containment
from trader.display import money, plural
from trader.domain import ZERO, Balance, Candle, Intent, IntentStatus
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome, clock_offset
from trader.executor import Executor
from trader.guard_book import GuardBook
from trader.invariant_monitor import InvariantMonitor
from trader.market.feed import FeedIssueKind, FeedMonitor, merge_backfill
from trader.order_tracker import OrderTracker
from trader.position import Position
from trader.telemetry import Counters
from trader.trade_history import period_pnl
from trader.trade_store import TradeStore

INTENT_TTL = timedelta(hours=6)
# Resolved intents go in batches: once the oldest is INTENT_TTL + PURGE_BATCH old, every one
# older than INTENT_TTL is deleted (one DELETE per ~1.5 h, not one per cleanup run).
PURGE_BATCH = timedelta(minutes=90)
FUNDING_EVERY = timedelta(minutes=5)
TELEMETRY_EVERY = timedelta(minutes=5)
CLEANUP_EVERY = timedelta(minutes=30)
RULES_EVERY = timedelta(hours=1)
FUNDING_MEMORY = timedelta(hours=1)    # the funding breaker compares with an hour ago

class Housekeeping:
    def __init__(self, settings: Settings, exchange: Exchange, executor: Executor, store: TradeStore,
                 alerter: Alerter, clock: Clock, guard_book: GuardBook,
                 candles: Mapping[str, deque[Candle]], counters: Counters,
                 boundary: Containment, tracker: OrderTracker) -> None:
        self.settings = settings
        self.exchange = exchange
        self.executor = executor
        self.tracker = tracker
        self.store = store
        self.alerter = alerter
        self.clock = clock
        self.guards = guard_book
        self.candles = candles
        self.counters = counters
        self.boundary = boundary
        self.feed = FeedMonitor()
        self.stale: set[str] = set()
        self.untradable: set[str] = set()
        self.funding_seen: dict[str, list[tuple[datetime, Decimal]]] = {}
        # When each timed job is next due (none: due now; a job dropped from it runs on the
        # next tick: a stream reconnect re-reads the rules so)
        self.due_at: dict[str, datetime] = {}
        self.summary_day: date | None = None
        self._today: tuple[datetime, datetime] | None = None   # summary_day's [start, end)
        self.invariants = InvariantMonitor(settings, exchange, executor, tracker, store,
                                           alerter, clock)
        # The paper exchange runs on the host's clock: nothing to add to it (every replayed
        # candle asks the feed watchdog); Binance's offset is read each time (a -1021
        # measures it again)
        self.offset_measured = hasattr(exchange, "clock_offset_ms")
        interval = timedelta(seconds=INTERVAL_SECONDS.get(settings.interval, 60))
        for symbol in candles:
            self.feed.watch(symbol, self.exchange_now(), interval)

    def exchange_now(self, now: datetime | None = None) -> datetime:
        """The exchange's time (the host's, `now` or the clock's, plus the measured offset):
        the feed watchdog compares it with candle times, which are the exchange's; the
        host's clock alone would call a candle late (or on time) by as much as it is ahead
        (or behind)."""
        now = self.clock.now() if now is None else now
        return now + clock_offset(self.exchange) if self.offset_measured else now

    def on_candle(self, candle: Candle) -> None:
        self.feed.on_candle(candle.symbol, candle, self.exchange_now())

    def entries_blocked(self, symbol: str) -> bool:
        return bool(self.entries_held(symbol))

    def entries_held(self, symbol: str) -> str:
        """Why the market data holds every entry on `symbol`, the one still working
        included ("" when it does not): its candles stale (the crash breaker reads them:
        it would not see a crash), or the symbol no longer trading."""
        if symbol in self.stale:
            return f"{symbol}: market data stale (no new candles)"
        if symbol in self.untradable:
            return f"{symbol}: status {self.exchange.rules(symbol).status} on the exchange"
        return ""

    async def run(self, positions: dict[str, Position], balance: Balance | None) -> None:
        """Each job inside its own boundary: one failing job skips only itself. Engine time
        moves only while a job runs (it may wait on the exchange): it is read again after
        each one that may have waited (the funding check reading pushed rates does not).
        Every replayed candle comes here: each timer is one comparison
        with when it is due, and the daily summary waits for the end of its day."""
        boundary = self.boundary
        contained = boundary.contained
        clock = self.clock
        due_at = self.due_at
        now = clock.now()
        if self.feed.has_issues(self.exchange_now(now)):    # most ticks: none to act on
            await contained("feed watchdog", self.watch_feed())
            now = clock.now()
        due = due_at.get("funding")
        if due is None or now >= due:
            due_at["funding"] = now + FUNDING_EVERY
            try:    # `contained` inline: every 5 min is every candle of a 5m replay
                # `check_funding` without its coroutine while every rate was pushed (the
                # paper exchange, Binance's mark price stream): the same steps, in order
                unread = self.check_pushed_funding(now)
                if unread is not None:
                    await self.check_funding(unread)
                    now = clock.now()
            except Exception as exc:  # the funding check's boundary
                if not boundary.failed("funding check", exc):
                    raise     # a backtest ends here (Containment.fail_fast)
                now = clock.now()
        due = due_at.get("rules")
        if due is None or now >= due:
            due_at["rules"] = now + RULES_EVERY
            await contained("symbol rules refresh", self.refresh_rules())
            now = clock.now()
        due = due_at.get("cleanup")
        if due is None or now >= due:
            due_at["cleanup"] = now + CLEANUP_EVERY
            await contained("intent cleanup", self.clean_intents())
            now = clock.now()
            # Finished orders learned 6 h ago are history: a tick reads only a symbol's
            # recent orders, and the tracker's memory stays bounded.
            self.tracker.forget_finished(now)
        due = due_at.get("telemetry")
        if due is None or now >= due:
            due_at["telemetry"] = now + TELEMETRY_EVERY
            self.counters.log(now)
        invariants = self.invariants
        invariants.ticks += 1            # `InvariantMonitor.due`, inline
        if invariants.every > 0 and invariants.ticks % invariants.every == 0:
            await contained("invariant monitor", invariants.check())
            now = clock.now()
        today = self._today
        if today is None or not today[0] <= now < today[1]:    # summary_day != now.date()
            await contained("daily summary", self.daily_summary(positions.values(), balance))

    # --- feed ---------------------------------------------------------------------
    async def watch_feed(self) -> None:
        now = self.clock.now()
        for issue in self.feed.check(self.exchange_now()):
            if issue.kind is FeedIssueKind.STALE and issue.first:
                self.stale.add(issue.symbol)
                self.alerter.publish(Alert(AlertName.STALE_DATA, f"{issue.symbol}: {issue.detail}; "
                                           "no new entries until candles resume", issue.symbol), now)
            elif issue.kind is FeedIssueKind.RESUMED:
                self.stale.discard(issue.symbol)
                self.alerter.publish(Alert(AlertName.DATA_RESUMED, f"{issue.symbol}: {issue.detail}",
                                           issue.symbol, dedup_key=f"resumed:{issue.symbol}"), now)
            elif issue.kind is FeedIssueKind.GAP and issue.missing:
                await self.backfill(issue.symbol, issue.missing[0], len(issue.missing))

    async def backfill(self, symbol: str, first_missing: datetime, count: int) -> None:
        history = self.candles[symbol]
        seconds = history[-1].interval.total_seconds() if history else 0
        interval = next((name for name, value in INTERVAL_SECONDS.items() if value == seconds),
                        self.settings.interval)
        try:
            fetched = await self.exchange.klines(symbol, interval, first_missing,
                                                 min(count + 1, 1000))
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("backfill failed symbol={} missing={} error={}", symbol, count, exc)
            return
        merged = merge_backfill(list(history), [c for c in fetched if c.closed])
        history.clear()
        history.extend(merged[-(history.maxlen or len(merged)):])
        logger.info("gap backfilled symbol={} missing={} fetched={}", symbol, count, len(fetched))

    # --- symbol rules ---------------------------------------------------------------
    async def refresh_rules(self) -> None:
        """Re-read tick/step/notional and status (hourly, and after a stream reconnect);
        a symbol no longer TRADING takes no entries and is alerted once."""
        self.executor.rules_changes += await self.exchange.refresh_rules()
        for symbol in self.candles:
            rules = self.exchange.rules(symbol)
            if rules.tradable:
                if symbol in self.untradable:
                    self.untradable.discard(symbol)
                    logger.info("symbol trading again symbol={} status={}", symbol, rules.status)
                continue
            if symbol not in self.untradable:
                self.untradable.add(symbol)
                self.alerter.publish(Alert(
                    AlertName.SYMBOL_RULES, f"{symbol}: status {rules.status} on the exchange: "
                    "no new entries; an open position keeps its protection", symbol),
                    self.clock.now())

    # --- funding breaker ------------------------------------------------------------
    async def check_funding(self, unread: tuple[datetime, int] | None = None) -> None:
        """Every symbol's funding rate (pushed, else read over REST) compared with the one an
        hour ago (the funding breaker). `unread`: (the check's time, the index of the first
        symbol `check_pushed_funding` left to do), to go on from there."""
        now, start = unread if unread is not None else (self.clock.now(), 0)
        for symbol in list(self.candles)[start:]:
            # the rate comes with the mark: a quiet book does not make it stale
            pushed = self.exchange.pushed_funding_rate(symbol, FUNDING_EVERY)
            try:
                rate = pushed if pushed is not None \
                    else await self.exchange.funding_rate(symbol)
            except (ExchangeError, UnknownOutcome) as exc:
                logger.info("funding rate unavailable symbol={} error={}", symbol, exc)
                continue
            self._funding_sample(symbol, rate, now)

    def check_pushed_funding(self, now: datetime | None = None) -> tuple[datetime, int] | None:
        """`check_funding` up to the first symbol with no pushed rate: None when every
        symbol's was pushed (all done, nothing awaited), else (the check's time, that
        symbol's index) for `check_funding` to go on from, in the same order. `now`: the
        engine time the caller read (None: read here); nothing here waits."""
        if now is None:
            now = self.clock.now()
        rate_of = self.exchange.pushed_funding_rate
        for index, symbol in enumerate(self.candles):
            rate = rate_of(symbol, FUNDING_EVERY)
            if rate is None:
                return now, index      # read over REST by `check_funding`: it may wait
            self._funding_sample(symbol, rate, now)
        return None

    def _funding_sample(self, symbol: str, rate: Decimal, now: datetime) -> None:
        """Keep `rate` as of `now`; the funding breaker's rule when it moved in the hour."""
        seen = self.funding_seen.get(symbol)
        if seen is None:
            seen = self.funding_seen[symbol] = []
        seen.append((now, rate))                 # in time order: the oldest leave first
        cutoff = now - FUNDING_MEMORY            # now - at > FUNDING_MEMORY: at < cutoff
        while seen[0][0] < cutoff:
            del seen[0]
        hour_ago, config = seen[0][1], self.guards.config
        # (ZERO, not 0: the same answer without converting the int every check)
        if rate == hour_ago and config.funding_jump >= ZERO:
            return                  # no move at all: `breaker_rules.check_funding` cannot trip
        self.guards.apply(breaker_rules.check_funding, symbol, rate, hour_ago, now, config)

    # --- intents older than 6 h -------------------------------------------------------
    async def clean_intents(self) -> None:
        cutoff = self.clock.now() - INTENT_TTL
        if not self.store.has_intents_before(cutoff):
            return          # the usual case: one small read instead of a scan and a write
        # Most runs find only resolved intents past the cutoff (waiting for the purge's
        # batch): `has_unresolved_before` says so without listing and sorting them all; it
        # is True exactly when the list below has one (the same intents, the same
        # comparison), so `stuck` is empty when it is skipped.
        stuck = [intent for intent in self.store.unresolved_intents()
                 if intent.created_at < cutoff] if self.store.has_unresolved_before(cutoff) \
            else []
        for intent in stuck:
            if intent.status is IntentStatus.SENT:
                await self.executor.probe(intent)
            elif intent.status is IntentStatus.PENDING:
                self._save(partial(self._expire_never_sent, intent))
        if not stuck and not self.store.has_intents_before(cutoff - PURGE_BATCH):
            return
        removed = self._save(lambda: self.store.purge_resolved_intents(cutoff))
        if removed:
            logger.info("intents cleaned up count={} older_than={}", removed, cutoff)

    def _expire_never_sent(self, intent: Intent) -> None:
        self.store.save_intent(intent.with_status(IntentStatus.EXPIRED, detail="never sent"),
                               self.clock.now())

    def _save(self, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except SaveStateFailure as exc:   # counted by the store's write health
            logger.error("housekeeping write failed error={}", exc)
            return None

    # --- daily summary --------------------------------------------------------------
    async def daily_summary(self, positions: Iterable[Position], balance: Balance | None) -> None:
        now = self.clock.now()
        today = now.date()
        if self.summary_day is None or today != self.summary_day:
            start = datetime.combine(today, time(), now.tzinfo)
            self._today = (start, start + timedelta(days=1))
        if self.summary_day is None:
            self.summary_day = today
            return
        if today == self.summary_day:
            return
        self.summary_day = today
        since = self.clock.now() - timedelta(days=1)
        # Funding is read from a day before: a trade closed today may have paid it earlier.
        day = period_pnl("day", self.store.closed_since(since),
                         self.store.funding_payments(since - timedelta(days=1)), since)
        equity = balance.equity if balance else ZERO
        self.alerter.publish(Alert(
            AlertName.DAILY_SUMMARY, f"daily summary: equity {money(equity)} USDT; last 24 h: "
            f"{plural(day.trades, 'trade')}, {day.wins} won, realised "
            f"{money(day.net, signed=True)} USDT net of fees and funding"
            + (f" (+ {day.unknown} closed with an unknown result (fills not read yet), not "
               "counted)" if day.unknown else "")
            + (f" (+ fees of {day.unvalued_fees} not valued in USDT, not in the net)"
               if day.unvalued_fees else "")
            + f"; {plural(sum(1 for p in positions if p.state.open), 'open position')}",
            dedup_key=f"daily:{today}"), self.clock.now())
