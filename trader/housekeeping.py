"""The engine's periodic duties, each gated by engine time so a tick stays cheap:
feed watchdog (stale data blocks entries and alerts; gaps are backfilled), the funding
breaker, the hourly symbol-rules refresh (a symbol no longer TRADING takes no entries),
cleanup of intents older than 6 h, the telemetry log line, and the daily summary.
"""

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from loguru import logger

from trader import guards
from trader.alerts import Alert, AlertName
from trader.config import INTERVAL_SECONDS
from trader.domain import Candle, IntentStatus
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.market.feed import FeedIssueKind, FeedMonitor, merge_backfill

if TYPE_CHECKING:
    from trader.engine import Engine

INTENT_TTL = timedelta(hours=6)
FUNDING_EVERY = timedelta(minutes=5)
TELEMETRY_EVERY = timedelta(minutes=5)
CLEANUP_EVERY = timedelta(minutes=30)
RULES_EVERY = timedelta(hours=1)


class Housekeeping:
    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.feed = FeedMonitor()
        self.stale: set[str] = set()
        self.untradable: set[str] = set()
        self.funding_seen: dict[str, list[tuple[object, Decimal]]] = {}
        self.last_run: dict[str, object] = {}
        self.summary_day: object = None
        interval = timedelta(seconds=INTERVAL_SECONDS.get(engine.settings.interval, 60))
        for symbol in engine.symbols:
            self.feed.watch(symbol, engine.clock.now(), interval)

    def _due(self, job: str, every: timedelta) -> bool:
        now = self.engine.clock.now()
        last = self.last_run.get(job)
        if last is not None and now - last < every:  # type: ignore[operator]
            return False
        self.last_run[job] = now
        return True

    def on_candle(self, candle: Candle) -> None:
        self.feed.on_candle(candle.symbol, candle, self.engine.clock.now())

    async def run(self) -> None:
        """Each job inside its own boundary: one failing job skips only itself."""
        contained = self.engine.contained
        await contained("feed watchdog", self.watch_feed())
        if self._due("funding", FUNDING_EVERY):
            await contained("funding check", self.check_funding())
        if self._due("rules", RULES_EVERY):
            await contained("symbol rules refresh", self.refresh_rules())
        if self._due("cleanup", CLEANUP_EVERY):
            await contained("intent cleanup", self.clean_intents())
        if self._due("telemetry", TELEMETRY_EVERY):
            self.engine.counters.log()
            await contained("order bookkeeping", self.forget_finished_orders())
        await contained("daily summary", self.daily_summary())

    # --- symbol rules ---------------------------------------------------------------
    async def refresh_rules(self) -> None:
        """Re-read tick/step/notional and status (hourly, and after a stream reconnect);
        a symbol no longer TRADING takes no entries and is alerted once."""
        engine = self.engine
        engine.executor.rules_changes += await engine.exchange.refresh_rules()
        for symbol in engine.symbols:
            rules = engine.exchange.rules(symbol)
            if rules.tradable:
                if symbol in self.untradable:
                    self.untradable.discard(symbol)
                    logger.info("symbol trading again symbol={} status={}", symbol, rules.status)
                continue
            if symbol not in self.untradable:
                self.untradable.add(symbol)
                engine.alerter.publish(Alert(
                    AlertName.SYMBOL_RULES, f"{symbol}: status {rules.status} on the exchange: "
                    "no new entries; an open position keeps its protection", symbol),
                    engine.clock.now())

    # --- feed ---------------------------------------------------------------------
    async def watch_feed(self) -> None:
        engine = self.engine
        for issue in self.feed.check(engine.clock.now()):
            if issue.kind is FeedIssueKind.STALE and issue.first:
                self.stale.add(issue.symbol)
                engine.alerter.publish(Alert(AlertName.STALE_DATA, f"{issue.symbol}: {issue.detail}; "
                                             "no new entries until candles resume", issue.symbol),
                                       engine.clock.now())
            elif issue.kind is FeedIssueKind.RESUMED:
                self.stale.discard(issue.symbol)
                engine.alerter.publish(Alert(AlertName.STALE_DATA, f"{issue.symbol}: {issue.detail}",
                                             issue.symbol, dedup_key=f"resumed:{issue.symbol}"),
                                       engine.clock.now())
            elif issue.kind is FeedIssueKind.GAP and issue.missing:
                await self.backfill(issue.symbol, issue.missing[0], len(issue.missing))

    async def backfill(self, symbol: str, first_missing, count: int) -> None:  # type: ignore[no-untyped-def]
        engine = self.engine
        history = engine.candles[symbol]
        seconds = history[-1].interval.total_seconds() if history else 0
        interval = next((name for name, value in INTERVAL_SECONDS.items() if value == seconds),
                        engine.settings.interval)
        try:
            fetched = await engine.exchange.klines(symbol, interval, first_missing,
                                                   min(count + 1, 1000))
        except (ExchangeError, UnknownOutcome) as exc:
            logger.warning("backfill failed symbol={} missing={} error={}", symbol, count, exc)
            return
        merged = merge_backfill(list(history), [c for c in fetched if c.closed])
        history.clear()
        history.extend(merged[-(history.maxlen or len(merged)):])
        logger.info("gap backfilled symbol={} missing={} fetched={}", symbol, count, len(fetched))

    def entries_blocked(self, symbol: str) -> bool:
        return symbol in self.stale or symbol in self.untradable

    async def forget_finished_orders(self) -> None:
        """The second-instance guard only needs ids that can still show up as live orders."""
        engine = self.engine
        live = {o.client_id for snap in engine.snapshots.values() for o in snap.orders}
        pending = {i.client_id for i in engine.store.unresolved_intents()}
        engine.known_orders &= live
        engine.executor.placed &= live | pending

    # --- funding breaker ------------------------------------------------------------
    async def check_funding(self) -> None:
        engine = self.engine
        now = engine.clock.now()
        for symbol in engine.symbols:
            try:
                rate = await engine.exchange.funding_rate(symbol)
            except (ExchangeError, UnknownOutcome) as exc:
                logger.info("funding rate unavailable symbol={} error={}", symbol, exc)
                continue
            seen = self.funding_seen.setdefault(symbol, [])
            seen.append((now, rate))
            seen[:] = [(at, r) for at, r in seen if now - at <= timedelta(hours=1)]  # type: ignore[operator]
            state, events = guards.check_funding(engine.guard_state, symbol, rate, seen[0][1], now,
                                                 engine.guard_config)
            if state != engine.guard_state:
                engine.save_guards(state)
            engine.publish_guard_events(events)

    # --- intents older than 6 h -------------------------------------------------------
    async def clean_intents(self) -> None:
        engine = self.engine
        cutoff = engine.clock.now() - INTENT_TTL
        for intent in engine.store.unresolved_intents():
            if intent.created_at < cutoff and intent.status is IntentStatus.SENT:
                await engine.executor.probe(intent)
            elif intent.created_at < cutoff and intent.status is IntentStatus.PENDING:
                engine.persist(lambda i=intent: engine.store.save_intent(
                    i.with_status(IntentStatus.EXPIRED, detail="never sent"), engine.clock.now()),
                    "intent cleanup")
        removed = [0]

        def purge() -> None:
            removed[0] = engine.store.purge_resolved_intents(cutoff)
        engine.persist(purge, "intent cleanup")
        if removed[0]:
            logger.info("intents cleaned up count={} older_than={}", removed[0], cutoff)

    # --- daily summary --------------------------------------------------------------
    async def daily_summary(self) -> None:
        from trader.control import pnl_view
        engine = self.engine
        today = engine.clock.now().date()
        if self.summary_day is None:
            self.summary_day = today
            return
        if today == self.summary_day:
            return
        self.summary_day = today
        pnl = pnl_view(engine, "day")
        equity = engine.balance.equity if engine.balance else Decimal(0)
        engine.alerter.publish(Alert(
            AlertName.DAILY_SUMMARY, f"daily summary: equity {equity:.2f} USDT; last 24 h: "
            f"{pnl.trades} trades, {pnl.wins} won, realised {pnl.realized:+.2f}, fees "
            f"{pnl.fees:.2f}; open positions {len(engine.positions)}",
            dedup_key=f"daily:{today}"), engine.clock.now())
