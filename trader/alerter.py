"""The alert outbox: publish -> route -> throttle -> database outbox -> the sink delivers.

The engine publishes alerts; they are written to the database outbox first (so nothing is
lost while Telegram is down or the process restarts) and an `AlertSink` (the Telegram bot,
or the log when headless) delivers them in order. Repeats of one dedup key are throttled:
within `throttle` (5 min) of the last one sent they are dropped; a non-CRITICAL key that keeps
coming back waits twice as long each time (5, 10, 20 ... min, at most 6 h), and the next
message says how many were dropped meanwhile, so a bug that fails every tick is not a sound
every five minutes.
If the database itself fails, alerts are kept in memory and still handed to the sink.

Routing (trader/alert_routing.py): a name in TRADEBOT_ALERTS_OFF is recorded but not sent;
an alert the operator already got as a command's reply is recorded but not sent. A breaker
trip is written to the outbox and held back for the merge window: if its clear comes first,
the trip is marked "merged" and one message says both ("spread breaker on XRPUSDT: tripped
12:03, cleared 12:08 UTC"); otherwise the trip goes out when the window ends and the clear
later. Re-trips of a breaker that has not cleared are folded into the first. Holding is in
memory only: after a restart a held trip is simply delivered. CRITICAL alerts are never
held, merged or turned off.
"""

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loguru import logger

from storage import SaveStateFailure, Store
from trader.alert_routing import AlertRouting, merged_text
from trader.alerts import MERGED_PAIRS, Alert, AlertSink, OutgoingAlert, Severity
from trader.clock import Clock, SystemClock

CLEARS = frozenset(MERGED_PAIRS.values())
MAX_THROTTLE = timedelta(hours=6)
# Enum members read once, here: a read of `Severity.INFO` goes through EnumType.__getattr__
# (Python 3.11: ~1,000 instructions), a module global is a dict read. The very same objects.
_CRITICAL, _INFO = Severity.CRITICAL, Severity.INFO


@dataclass
class _Repeats:
    """The last alert of one dedup key that was sent, and what was dropped since."""
    sent_at: datetime
    window: timedelta
    dropped: int = 0

    def recurring(self, now: datetime) -> bool:
        return now - self.sent_at < 2 * self.window


@dataclass
class _Episode:
    """A breaker between its trip and its clear."""
    trip: Alert
    tripped_at: datetime
    last_trip_at: datetime
    outbox_id: int | None
    held: bool


class Alerter:
    """Routes, throttles, records and hands alerts to the sink. Never blocks the engine.

    `clock` is the engine's (replay time in a replay): held trips are released by it.
    """

    def __init__(self, store: Store, clock: Clock | None = None,
                 routing: AlertRouting | None = None,
                 throttle: timedelta = timedelta(minutes=5)) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.routing = routing or AlertRouting()
        self.throttle = throttle
        self.sink: AlertSink | None = None
        self._repeats: dict[str, _Repeats] = {}
        self._unsaved: deque[OutgoingAlert] = deque(maxlen=1000)
        self._episodes: dict[str, _Episode] = {}
        # Queued inside the engine's unit of work and not committed yet: a rollback
        # (storage/unit_of_work.py) takes their rows, so they are kept in memory then.
        self._uncommitted: list[OutgoingAlert] = []
        store.unit.commit_listeners.append(self._uncommitted.clear)
        store.unit.rollback_listeners.append(self._rows_rolled_back)

    def publish(self, alert: Alert, now: datetime) -> bool:
        """Queue an alert; False if it was throttled as a repeat of the same key or is
        turned off (TRADEBOT_ALERTS_OFF)."""
        if self.routing.is_off(alert):
            logger.info("alert off (TRADEBOT_ALERTS_OFF) name={} symbol={} text={}", alert.name,
                        alert.symbol or "-", alert.text.replace("\n", " | "))
            self._record(alert, now, "off")
            return False
        level = alert.level     # (a property: read once; it never changes)
        throttled, alert = self._throttle(alert, now, level)
        if throttled:
            return False
        logger.log("WARNING" if level is not _INFO else "INFO",
                   "alert name={} severity={} symbol={} text={}",
                   alert.name, level, alert.symbol or "-", alert.text.replace("\n", " | "))
        # (the subject first: most alerts have none, and neither test holds without one;
        # `_trip` keeps episodes under a subject only)
        subject = alert.subject
        if alert.answered_in_reply:
            self._record(alert, now, "answered")
        elif subject and alert.name in MERGED_PAIRS:
            self._trip(alert, now)
        elif subject in self._episodes and alert.name in CLEARS:
            self._clear(alert, now)
        else:
            self._enqueue(alert, now, level)
        return True

    def _throttle(self, alert: Alert, now: datetime, level: Severity) -> tuple[bool, Alert]:
        """(True, _) for a repeat to drop; else the alert to send, saying what was dropped.
        `level`: the alert's."""
        key = alert.key
        repeats = self._repeats.get(key)
        window = self.throttle
        if repeats is not None:
            if now - repeats.sent_at < repeats.window:
                repeats.dropped += 1
                logger.info("alert throttled name={} key={} until={}", alert.name, key,
                            (repeats.sent_at + repeats.window).isoformat())
                return True, alert
            if repeats.recurring(now) and level is not _CRITICAL:
                window = min(repeats.window * 2, MAX_THROTTLE)
            if repeats.dropped:
                alert = replace(alert, text=f"{alert.text}\n({repeats.dropped} more like it "
                                f"since {repeats.sent_at:%H:%M} UTC)")
        self._repeats[key] = _Repeats(now, window)
        if len(self._repeats) > 2000:   # keys carry ids and dates: forget the ones gone quiet
            self._repeats = {k: r for k, r in self._repeats.items() if r.recurring(now)}
        return False, alert

    # --- trip / clear pairs ---------------------------------------------------------------
    def _trip(self, alert: Alert, now: datetime) -> None:
        episode = self._episodes.get(alert.subject)
        if episode is not None and now - episode.last_trip_at <= self.routing.merge_window:
            episode.last_trip_at = now
            logger.info("breaker re-tripped before its clear: one message subject={}",
                        alert.subject)
            self._record(alert, now, "merged")
            return
        outbox_id = self._enqueue(alert, now)
        held = outbox_id is not None and self.routing.holds(alert)
        self._episodes[alert.subject] = _Episode(alert, now, now, outbox_id, held)

    def _clear(self, alert: Alert, now: datetime) -> None:
        episode = self._episodes.pop(alert.subject)
        if episode.held and now - episode.tripped_at <= self.routing.merge_window \
                and self._mark(episode.outbox_id, "merged", now):
            self._enqueue(replace(alert, text=merged_text(episode.trip, episode.tripped_at, now)),
                          now)
            return
        self._enqueue(replace(alert, text=f"{alert.text} (tripped {episode.tripped_at:%H:%M} "
                              "UTC)"), now)

    def release_held(self, now: datetime | None = None) -> None:
        """Let held trips go: those whose window ended by `now`, or all (on stop)."""
        for episode in self._episodes.values():
            if episode.held and (now is None
                                 or now - episode.tripped_at >= self.routing.merge_window):
                episode.held = False

    # --- outbox ---------------------------------------------------------------------------
    def _enqueue(self, alert: Alert, now: datetime, level: Severity | None = None) -> int | None:
        """`level`: the alert's when its caller read it already."""
        outbox_id: int | None = None
        # the members' values (`_value_`: `.value`'s own, without its property call)
        name, severity = alert.name._value_, (level or alert.level)._value_
        try:
            outbox_id = self.store.enqueue_alert(now, name, severity, alert.symbol, alert.key,
                                                 alert.text)
            if self.store.unit.holds_writes():
                self._uncommitted.append(OutgoingAlert(None, now, name, severity, alert.symbol,
                                                       alert.text, alert.key))
        except SaveStateFailure as exc:
            logger.error("alert kept in memory (database down) name={} error={}", alert.name, exc)
            self._unsaved.append(OutgoingAlert(None, now, name, severity, alert.symbol,
                                               alert.text, alert.key))
        if self.sink is not None:
            self.sink.wake()
        return outbox_id

    def record(self, alert: Alert, now: datetime, status: str) -> None:
        """Keep `alert` in the outbox for /alerts with the final `status`, never sent: its
        caller knows the operator has it already (a start-up refusal a restart repeats)."""
        logger.info("alert not sent ({}) name={} text={}", status, alert.name,
                    alert.text.replace("\n", " | "))
        self._record(alert, now, status)

    def _record(self, alert: Alert, now: datetime, status: str) -> None:
        """Kept in the outbox for /alerts with a final status: never sent."""
        try:
            outbox_id = self.store.enqueue_alert(now, alert.name.value, alert.level.value,
                                                 alert.symbol, alert.key, alert.text)
        except SaveStateFailure as exc:
            logger.error("alert not recorded name={} status={} error={}", alert.name, status, exc)
            return
        self._mark(outbox_id, status, now)

    def _mark(self, outbox_id: int | None, status: str, now: datetime) -> bool:
        if outbox_id is None:
            return False
        try:
            self.store.mark_alert(outbox_id, status, now)
        except SaveStateFailure as exc:
            logger.error("alert status not saved id={} status={} error={}", outbox_id, status, exc)
            return False
        return True

    def _rows_rolled_back(self) -> None:
        """The unit of work rolled back: its queued alerts are delivered from memory."""
        if self._uncommitted:
            logger.error("alerts kept in memory (their outbox rows were rolled back) count={}",
                         len(self._uncommitted))
            self._unsaved.extend(self._uncommitted)
            self._uncommitted.clear()
        if self.sink is not None:
            self.sink.wake()

    def take_unsaved(self) -> list[OutgoingAlert]:
        """Alerts that could not be written to the outbox, oldest first (then forgotten)."""
        taken = list(self._unsaved)
        self._unsaved.clear()
        return taken

    def pending(self, limit: int = 50, severity: Severity | None = None,
                names: Iterable[str] = ()) -> list[OutgoingAlert]:
        """Up to `limit` alerts to deliver, oldest first: the outbox's pending ones (when
        `severity` or `names` is given, only those of that severity or with one of those
        names) except the trips still held for their clear (those whose window ended are
        released)."""
        self.release_held(self.clock.now())
        held = {e.outbox_id for e in self._episodes.values() if e.held}
        only = None if severity is None else severity.value
        rows = [a for a in self.store.pending_alerts(limit + len(held), only, list(names))
                if a.id not in held]
        return [OutgoingAlert(a.id, a.created_at, a.name, a.severity, a.symbol, a.text,
                              a.dedup_key) for a in rows[:limit]]
