"""The live invariant monitor: every TRADEBOT_INVARIANT_CHECK_TICKS ticks it checks what the
chaos test checks (trader/invariant_checks.py, one definition for both) on the live
account, and alerts what lasts. A detector only: it never places, cancels or changes
anything; the engine's own rules repair, the operator decides the rest.

Checked, per symbol: one live stop-loss covering each open position (NO_STOP, EXTRA_STOP),
take-profits closing exactly its size (TAKE_PROFIT), no order of ours on a flat symbol
(FLAT_ORDERS), the database's position is the exchange's (POSITION_MISMATCH), one exchange
order per client id among the position's fills (DUPLICATE_ID), every exchange fill since
the position opened journaled (UNJOURNALED_FILL); for the account: no order SENT with its
fate unknown past recvWindow (STUCK_INTENT), the alert outbox drains (ALERT_BACKLOG), the
push streams are up (STREAM_SILENT).

Transients are not violations. The engine passes through some on purpose: a stop replaced
new-first is two stops for up to two ticks, an entry just filled has no legs until the same
step places them, a closed position's take-profit is cancelled in the tick that finalizes
it, a fill read over REST is journaled by the next reconciliation. So a violation is
alerted only when two consecutive checks see it (TRADEBOT_INVARIANT_CHECK_TICKS >= 3 ticks
apart: longer than any of those), once per kind and symbol per episode (the alerter's
throttle keeps a flapping one quiet), and INVARIANT_CLEARED follows when a check no longer
sees it. A leg the engine is still debouncing (absent from the open orders, no final
status, for less than TRADEBOT_SENTINEL_DEBOUNCE_SECONDS) counts as live: the engine does
not believe it gone yet either. The order tracker learns a position opened in this tick
from the next tick's events: for one check the database may hold a position the tracker
does not show yet. Fills count from TRADEBOT_RECONCILE_SECONDS + two ticks old
(the periodic reconciliation journals them while polling); an intent as stuck once SENT
for recvWindow + 10 s of clock skew + one reconciliation period (the reconciliation probes
every unresolved intent, and one past recvWindow resolves then); an alert from 5 minutes of
waiting (wall clock: a fast replay's engine clock would make Telegram look slow).

What it reads: what the engine already holds (the order tracker's orders and positions,
the database's positions, fills, intents and alert outbox) and, only for a symbol whose
user-data stream is not trusted (polling) that has an open position, one REST read per
check: its fills since the position opened (GET /fapi/v1/userTrades, weight 5, plus once
per order never seen before GET /fapi/v1/order, weight 1, to name it; https://developers.
binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List). At
the defaults (30 ticks of 2 s: one check a minute) that is 5 weight per polled open
position per minute, 0.2 % of the 2,400 a minute Binance allows; with the stream: 0.

    monitor = InvariantMonitor(settings, exchange, executor, tracker, store, alerter, clock)
    if monitor.due():                  # once per engine tick
        await monitor.check()          # -> what this check found
    monitor.violations                 # the confirmed ones (for /health)
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loguru import logger

from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock, SystemClock
from trader.config import Settings
from trader.domain import Order
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome, stream_states
from trader.executor import PROBE_GRACE, Executor
from trader.invariant_checks import (
    OURS,
    InvariantKind,
    Violation,
    WaitingAlert,
    all_clear_text,
    duplicate_client_ids,
    flat_symbol_violations,
    position_mismatch,
    silent_streams,
    stop_loss_violations,
    stuck_intents,
    take_profit_violations,
    undelivered_alerts,
    unjournaled_fills,
)
from trader.order_tracker import OrderTracker
from trader.position import Position, PositionState
from trader.trade_store import TradeStore

CONFIRMING_CHECKS = 2                       # consecutive checks that must see a violation
ALERT_BACKLOG_AFTER = timedelta(minutes=5)  # of wall-clock time waiting in the outbox
BACKLOG_READ = 200                          # outbox rows read per check

KIND_ALERTS: dict[InvariantKind, AlertName] = {
    InvariantKind.NO_STOP: AlertName.INVARIANT_NO_STOP,
    InvariantKind.EXTRA_STOP: AlertName.INVARIANT_EXTRA_STOP,
    InvariantKind.TAKE_PROFIT: AlertName.INVARIANT_TAKE_PROFIT,
    InvariantKind.FLAT_ORDERS: AlertName.INVARIANT_FLAT_ORDERS,
    InvariantKind.DUPLICATE_ID: AlertName.INVARIANT_DUPLICATE_ID,
    InvariantKind.UNJOURNALED_FILL: AlertName.INVARIANT_UNJOURNALED_FILL,
    InvariantKind.ALERT_BACKLOG: AlertName.INVARIANT_ALERT_BACKLOG,
    InvariantKind.STUCK_INTENT: AlertName.INVARIANT_STUCK_INTENT,
    InvariantKind.POSITION_MISMATCH: AlertName.INVARIANT_POSITION_MISMATCH,
    InvariantKind.STREAM_SILENT: AlertName.INVARIANT_STREAM_SILENT,
}


@dataclass(frozen=True, slots=True)
class Episode:
    """One violation (a kind on a symbol) from the check that first saw it."""
    violation: Violation
    since: datetime
    checks: int = 1               # consecutive checks that saw it
    announced: bool = False       # its alert went out (an all-clear is owed)

    @property
    def confirmed(self) -> bool:
        return self.checks >= CONFIRMING_CHECKS


class Episodes:
    """Which violations last: fed each check's findings, it keeps the ones seen in a row."""

    def __init__(self) -> None:
        self._tracked: dict[tuple[InvariantKind, str], Episode] = {}

    def update(self, found: Sequence[Violation], now: datetime) -> list[Episode]:
        """Take one check's findings; returns the confirmed episodes that ended with it."""
        seen: dict[tuple[InvariantKind, str], Violation] = {}
        for violation in found:
            known = seen.get(violation.key)
            seen[violation.key] = violation if known is None else replace(
                known, text=f"{known.text}; {violation.text}",
                client_ids=known.client_ids + violation.client_ids)
        ended = [e for key, e in self._tracked.items() if key not in seen and e.confirmed]
        tracked = {}
        for key, violation in seen.items():
            previous = self._tracked.get(key)
            tracked[key] = Episode(violation, now) if previous is None else replace(
                previous, violation=violation, checks=previous.checks + 1)
        self._tracked = tracked
        return ended

    def confirmed(self) -> list[Episode]:
        return [e for e in self._tracked.values() if e.confirmed]

    def mark_announced(self, episode: Episode) -> None:
        self._tracked[episode.violation.key] = replace(episode, announced=True)


class InvariantMonitor:
    """See the module docstring. One per engine; `check` runs inside the engine's tick (the
    housekeeping boundary), so it reads the engine's state between its writes."""

    def __init__(self, settings: Settings, exchange: Exchange, executor: Executor,
                 tracker: OrderTracker, store: TradeStore, alerter: Alerter, clock: Clock,
                 wall_clock: Clock | None = None) -> None:
        self.every = settings.invariant_check_ticks
        self.symbols = list(settings.symbols)
        self.exchange, self.executor, self.tracker = exchange, executor, tracker
        self.store, self.alerter, self.clock = store, alerter, clock
        self.wall_clock = wall_clock or SystemClock()
        self.debounce = timedelta(seconds=settings.sentinel_debounce_seconds)
        self.intent_window = timedelta(milliseconds=settings.recv_window_ms) + PROBE_GRACE \
            + timedelta(seconds=settings.reconcile_seconds)
        self.journal_lag = timedelta(seconds=settings.reconcile_seconds
                                     + 2 * settings.tick_seconds)
        self.episodes = Episodes()
        self.ticks = 0
        self.checks = 0
        self.rest_reads = 0             # fills read over REST (the monitor's whole cost)
        self._waiting_since: dict[int, datetime] = {}

    @property
    def violations(self) -> list[Violation]:
        """The violations two checks in a row have seen, as of the last check."""
        return [e.violation for e in self.episodes.confirmed()]

    def due(self) -> bool:
        """Count one tick; True when a check is due (never when switched off: 0)."""
        self.ticks += 1
        return self.every > 0 and self.ticks % self.every == 0

    async def check(self) -> list[Violation]:
        """Check every invariant now, alert what lasted, clear what ended; what was found."""
        now = self.clock.now()
        records = {p.symbol: p for p in self.store.open_positions()}
        found: list[Violation] = []
        for symbol in self.symbols:
            found += await self._check_symbol(symbol, records.get(symbol), now)
        found += stuck_intents(self.store.unresolved_intents(), now, self.intent_window)
        found += self._alert_backlog()
        found += silent_streams(stream_states(self.exchange))
        self.checks += 1
        self._report(found, now)
        return found

    async def _check_symbol(self, symbol: str, record: Position | None,
                            now: datetime) -> list[Violation]:
        held = self.tracker.position(symbol)
        if held is None:
            return []                   # never read yet: nothing to compare
        live = self._live_orders(symbol, now)
        allowed: set[str] = set()
        if record is not None and record.state is PositionState.ENTERING:
            allowed = {o.client_id for o in live if record.owns(o.client_id)}  # its entry
        found = (stop_loss_violations(held, live) + take_profit_violations(held, live)
                 + flat_symbol_violations(symbol, held, live, allowed)
                 + position_mismatch(symbol, record, held))
        if record is not None and record.state.open:
            found += await self._check_fills(symbol, record, now)
        return found

    def _live_orders(self, symbol: str, now: datetime) -> list[Order]:
        """The tracker's live orders, and ours only absent from a listing for less than the
        engine's debounce (it does not believe them gone yet either; anybody else's absent
        order is gone: nobody probes it)."""
        return [t.order for t in self.tracker.for_symbol(symbol).values()
                if t.order.status.live and (t.absent_since is None or (
                    t.order.client_id.startswith(OURS) and now - t.absent_since < self.debounce))]

    async def _check_fills(self, symbol: str, record: Position,
                           now: datetime) -> list[Violation]:
        journaled = self.store.fills(symbol, record.opened_at)
        sightings = [(f.client_id, f.order_id) for f in journaled]
        found: list[Violation] = []
        if self._polling(symbol) and not self.executor.circuit_open():
            try:
                fills = await self.executor.read(self.exchange.fills, symbol, record.opened_at)
            except (ExchangeError, UnknownOutcome) as exc:
                logger.info("invariant monitor: fills unreadable symbol={} error={}", symbol,
                            exc)
            else:
                self.rest_reads += 1
                sightings += [(f.client_id, f.order_id) for f in fills]
                found += unjournaled_fills(fills, self.store.fill_ids(symbol),
                                           settled_before=now - self.journal_lag)
        return found + duplicate_client_ids(sightings)

    def _polling(self, symbol: str) -> bool:
        """The user-data stream is not trusted for `symbol` (trader/exchange_view.py)."""
        return not (self.exchange.streaming and self.tracker.synced(symbol))

    def _alert_backlog(self) -> list[Violation]:
        if self.alerter.sink is None:
            return []                   # nobody delivers (a backtest keeps alerts as records)
        now = self.wall_clock.now()
        pending = [a for a in self.alerter.pending(BACKLOG_READ) if a.outbox_id is not None]
        self._waiting_since = {a.outbox_id: self._waiting_since.get(a.outbox_id, now)
                               for a in pending if a.outbox_id is not None}
        waiting = [WaitingAlert(a.outbox_id, a.name, self._waiting_since[a.outbox_id])
                   for a in pending if a.outbox_id is not None]
        return undelivered_alerts(waiting, now - ALERT_BACKLOG_AFTER)

    # --- alerts ---------------------------------------------------------------------------
    def _report(self, found: list[Violation], now: datetime) -> None:
        for ended in self.episodes.update(found, now):
            if ended.announced:
                self._publish_clear(ended, now)
        for episode in self.episodes.confirmed():
            if not episode.announced and self._publish(episode, now):
                self.episodes.mark_announced(episode)
        if found:
            logger.info("invariant check found={}", " | ".join(v.line for v in found))

    def _publish(self, episode: Episode, now: datetime) -> bool:
        """The episode's one alert; False when the alerter throttled it (a flapping
        violation): tried again at the next check. One the operator turned off
        (TRADEBOT_ALERTS_OFF) is recorded once, like any other."""
        violation = episode.violation
        alert = Alert(
            KIND_ALERTS[violation.kind], f"{violation.symbol or 'account'}: {violation.text}. "
            f"Seen by every check since {episode.since:%H:%M:%S} UTC (the monitor only "
            "reports; see README, Troubleshooting)", violation.symbol,
            dedup_key=f"invariant:{violation.kind}:{violation.symbol}")
        return self.alerter.publish(alert, now) or self.alerter.routing.is_off(alert)

    def _publish_clear(self, episode: Episode, now: datetime) -> None:
        """INVARIANT_CLEARED saying what is true now, in words (trader/invariant_checks.py
        `all_clear_text`)."""
        violation = episode.violation
        held = self.tracker.position(violation.symbol) if violation.symbol else None
        position_open = held is not None and held.quantity != 0
        self.alerter.publish(Alert(
            AlertName.INVARIANT_CLEARED, f"{violation.symbol or 'account'}: "
            f"{all_clear_text(violation, episode.since, position_open)}", violation.symbol,
            dedup_key=f"invariant-cleared:{violation.kind}:{violation.symbol}"), now)
