"""The alert outbox: publish -> throttle -> database outbox -> the sink delivers.

The engine publishes alerts; they are written to the database outbox first (so nothing is
lost while Telegram is down or the process restarts) and an `AlertSink` (the Telegram bot,
or the log when headless) delivers them in order. Repeats of one dedup key are throttled.
If the database itself fails, alerts are kept in memory and still handed to the sink.
"""

from collections import deque
from datetime import datetime, timedelta

from loguru import logger

from storage import SaveStateFailure, Store
from trader.alerts import Alert, AlertSink, OutgoingAlert, Severity


class Alerter:
    """Throttles, records and hands alerts to the sink. Never blocks the engine."""

    def __init__(self, store: Store, throttle: timedelta = timedelta(minutes=5)) -> None:
        self.store = store
        self.throttle = throttle
        self.sink: AlertSink | None = None
        self._last_sent: dict[str, datetime] = {}
        self._unsaved: deque[OutgoingAlert] = deque(maxlen=1000)

    def publish(self, alert: Alert, now: datetime) -> bool:
        """Queue an alert; False if it was throttled as a repeat of the same key."""
        last = self._last_sent.get(alert.key)
        if last is not None and now - last < self.throttle:
            logger.info("alert throttled name={} key={}", alert.name, alert.key)
            return False
        self._last_sent[alert.key] = now
        if len(self._last_sent) > 2000:   # keys carry ids and dates: forget old ones
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.throttle}
        logger.log("WARNING" if alert.level is not Severity.INFO else "INFO",
                   "alert name={} severity={} symbol={} text={}",
                   alert.name, alert.level, alert.symbol or "-", alert.text.replace("\n", " | "))
        try:
            self.store.enqueue_alert(now, alert.name.value, alert.level.value, alert.symbol,
                                     alert.key, alert.text)
        except SaveStateFailure as exc:
            logger.error("alert kept in memory (database down) name={} error={}", alert.name, exc)
            self._unsaved.append(OutgoingAlert(None, now, alert.name.value, alert.level.value,
                                               alert.symbol, alert.text))
        if self.sink is not None:
            self.sink.wake()
        return True

    def take_unsaved(self) -> list[OutgoingAlert]:
        """Alerts that could not be written to the outbox, oldest first (then forgotten)."""
        taken = list(self._unsaved)
        self._unsaved.clear()
        return taken

    def pending(self, limit: int = 50) -> list[OutgoingAlert]:
        return [OutgoingAlert(a.id, a.created_at, a.name, a.severity, a.symbol, a.text)
                for a in self.store.pending_alerts(limit)]
