"""The exchange's own state told to the operator once per change: the rate-limit circuit
opening and closing (API_CIRCUIT_OPEN / API_CIRCUIT_CLOSED), its REST API not answering
(EXCHANGE_UNREACHABLE / EXCHANGE_REACHABLE), a symbol's trading rules changing
(SYMBOL_RULES).

How long the REST API may stay silent (`rest_bounds`), from TRADEBOT_TICK_SECONDS:
- a warning after max(3 ticks, 30 s), the bound a stalled tick has (trader/health.py): the
  gate's own retries of one read span ~2 s, and Binance's load balancer answers a 503 now
  and then; one silent stretch that long is no longer a blip. The alert goes out then.
- unhealthy (GET /health answers 503) after max(12 ticks, 2 min): by then no stop could have
  been placed, moved or checked for four stretches that long, and the user-data stream
  alone cannot say a stop is still there; the operator should look at the exchange.
Both are measured on the evidence, first to last unanswered request; while an outage goes on
and nothing else asks, a ping every max(1 tick, 5 s) keeps the evidence current.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta

from loguru import logger

from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.display import duration
from trader.exchange.base import Exchange, ExchangeError, UnknownOutcome
from trader.exchange.rest_answers import RestAnswers
from trader.executor import Executor
from trader.position import Position

REST_WARN_TICKS, REST_WARN_SECONDS = 3, 30.0
REST_UNHEALTHY_TICKS, REST_UNHEALTHY_SECONDS = 12, 120.0
# During an outage, nothing else asked for this long: one GET /fapi/v1/ping (weight 1 of the
# 2,400 a minute) tells whether it goes on. At most 12 a minute, only while it lasts.
REST_PING_SECONDS = 5.0


def rest_bounds(tick_seconds: float) -> tuple[float, float]:
    """(warning, unhealthy): seconds without a REST answer (the module docstring says why)."""
    return (max(REST_WARN_TICKS * tick_seconds, REST_WARN_SECONDS),
            max(REST_UNHEALTHY_TICKS * tick_seconds, REST_UNHEALTHY_SECONDS))


class ExchangeHealth:
    """Run `watch_circuit()` before and after the symbols, `watch_rest()` and
    `report_rules_changes()` once a tick."""

    def __init__(self, exchange: Exchange, executor: Executor, alerter: Alerter,
                 clock: Clock, tick_seconds: float) -> None:
        self.exchange = exchange
        self.executor = executor
        self.alerter = alerter
        self.clock = clock
        self.circuit_alerted: datetime | None = None   # opened_at of the circuit alerted
        # None: an exchange that sends no REST request (paper, the backtest's simulator)
        answers = getattr(exchange, "rest_answers", None)
        self.rest_answers = answers if isinstance(answers, RestAnswers) else None
        self.rest_warn_after = rest_bounds(tick_seconds)[0]
        self.rest_ping_after = max(tick_seconds, REST_PING_SECONDS)
        self.rest_alerted: datetime | None = None      # since when, of the outage alerted

    async def watch_rest(self, positions: Mapping[str, Position], circuit_open: bool) -> None:
        """During an outage, a ping when nothing else asked for `rest_ping_after` (a flat
        account on healthy streams asks once a minute): the outage's end is seen within
        seconds, and so is its going on. EXCHANGE_UNREACHABLE once an outage has lasted the
        warning bound (once per outage; repeats within minutes are throttled by the alerter's
        dedup key), and EXCHANGE_REACHABLE with how long it lasted when a request is
        answered again."""
        last = self.rest_answers.last_outage() if self.rest_answers is not None else None
        if last is None:
            return
        now = self.clock.now()
        if last.ended_at is None and not circuit_open \
                and (now - last.failed_at).total_seconds() >= self.rest_ping_after:
            await self._ping()
            last = self.rest_answers.last_outage() if self.rest_answers is not None else None
            assert last is not None
        if last.ended_at is None and self.rest_alerted is None \
                and last.span() >= self.rest_warn_after:
            self.rest_alerted = last.since
            logger.error("exchange REST not answering since={} failures={} last_error={}",
                         last.since.isoformat(), last.failures, last.last_error)
            self.alerter.publish(Alert(
                AlertName.EXCHANGE_UNREACHABLE,
                f"{last.describe()}: no answer for {last.span():.0f} s (last: "
                f"{last.last_error}). {_unreachable_text(positions)}",
                dedup_key="exchange-unreachable"), now)
        elif last.ended_at is not None and self.rest_alerted is not None:
            lasted = timedelta(seconds=round((last.ended_at - self.rest_alerted).total_seconds()))
            self.rest_alerted = None
            logger.info("exchange REST answering again after_s={:.0f} failures={}",
                        lasted.total_seconds(), last.failures)
            self.alerter.publish(Alert(
                AlertName.EXCHANGE_REACHABLE,
                f"Binance REST answering again since {last.ended_at:%H:%M:%S} UTC, after "
                f"{duration(lasted)} without an answer",
                dedup_key="exchange-reachable"), now)

    def watch_circuit(self, positions: Mapping[str, Position]) -> None:
        """API_CIRCUIT_OPEN when the exchange rate-limits us, an all-clear when it passes.
        `positions`: the open ones, by symbol: the alert says which have no stop on the
        exchange while nothing can be sent."""
        circuit = self.exchange.circuit()
        if circuit.open_until is None and self.circuit_alerted is None:
            return          # closed, and no opening to announce the end of (nearly always)
        now = self.clock.now()
        if circuit.is_open(now) and circuit.opened_at != self.circuit_alerted:
            self.circuit_alerted = circuit.opened_at
            until = circuit.open_until
            assert until is not None
            self.alerter.publish(Alert(
                AlertName.API_CIRCUIT_OPEN, f"{circuit.reason}: no requests to the exchange "
                f"until {until:%H:%M:%S} UTC ({(until - now).total_seconds():.0f} s). "
                f"{_protection_text(positions)}",
                dedup_key=f"circuit:{until.isoformat()}"), now)
        elif not circuit.is_open(now) and self.circuit_alerted is not None:
            self.circuit_alerted = None
            self.alerter.publish(Alert(AlertName.API_CIRCUIT_CLOSED,
                                       "rate-limit window over: requests to the exchange resume",
                                       dedup_key=f"circuit-closed:{now.isoformat()}"), now)

    async def _ping(self) -> None:
        ping = getattr(self.exchange, "ping", None)     # the Binance adapter's
        if ping is None:
            return
        try:
            await ping()
        except (ExchangeError, UnknownOutcome) as exc:   # counted by the gate's answers
            logger.info("exchange REST ping unanswered error={}", exc)

    def report_rules_changes(self) -> None:
        """One SYMBOL_RULES alert per change the executor saw ("BTCUSDT: tick size ...")."""
        if not self.executor.rules_changes:
            return          # nearly every tick: no new list to swap in
        changes, self.executor.rules_changes = self.executor.rules_changes, []
        for line in changes:
            self.alerter.publish(Alert(AlertName.SYMBOL_RULES, f"trading rules changed: {line}",
                                       line.split(":", 1)[0]), self.clock.now())


def _unreachable_text(positions: Mapping[str, Position]) -> str:
    if not any(position.state.open for position in positions.values()):
        return "No position open; entries wait for an answer."
    return ("Open positions keep their exchange-side orders, but none can be checked, "
            "placed or moved until Binance answers: look at the exchange if it goes on.")


def _protection_text(positions: Mapping[str, Position]) -> str:
    """What protects the open positions while no request can be sent: the ones whose stop
    is not on the exchange are named (their replacement waits for the window's end)."""
    bare = sorted(symbol for symbol, position in positions.items()
                  if position.state.open and not position.stop.covers(position.quantity))
    if not bare:
        return "Positions stay protected by their exchange-side orders."
    return (f"{', '.join(bare)} {'has' if len(bare) == 1 else 'have'} NO stop-loss on the "
            "exchange until then: the replacement is sent when the window ends.")
