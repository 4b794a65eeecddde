"""The rate-limit circuit's end kept in the database, so that a process restarted inside a
Retry-After (an IP ban lasts "from 2 minutes to 3 days" and grows "for repeat offenders":
Binance's general info, LIMITS) sends nothing until it ends, and says until when.

The disk is wiped only when the host restarts; then nothing is kept and the new process
is a plain client: its first request is answered 418 with Retry-After, and it waits that.

    memory = CircuitMemory(store, clock, endpoint)   # engine_setup.rest_endpoint: the REST host
    memory.attach(exchange)       # restores a window still running, keeps each new one

Binance bans an IP on the host that banned it: a window kept for another endpoint (the same
disk restarted on mainnet after testnet, another BINANCE_FUTURES_URL) is not waited for.

A window restored lasts no longer from now than the Retry-After it was given (its saved
length), nor than Binance's longest ban (3 days): the clock that saved it may have run ahead
(NTP corrected it before the restart), or the Retry-After was absurd; the log says it is cut.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from storage.db import SaveStateFailure
from trader.clock import Clock
from trader.exchange.base import LONGEST_BAN, CircuitState, Exchange
from trader.trade_store import TradeStore

KEY = "exchange_circuit"


class CircuitMemory:
    def __init__(self, store: TradeStore, clock: Clock, endpoint: str) -> None:
        self.store = store
        self.clock = clock
        self.endpoint = endpoint

    def attach(self, exchange: Exchange) -> None:
        """Restore a window a previous process saw still running, and keep each new one."""
        kept = self.recall()
        if kept is not None:
            exchange.restore_circuit(kept)
        exchange.on_circuit_open(self.remember)

    def remember(self, circuit: CircuitState) -> None:
        """Save `circuit` (called by the gate as it opens: quick, never raises: a disk that
        refuses the write leaves this process honouring the window all the same)."""
        if circuit.open_until is None:
            return
        body = {"open_until": circuit.open_until.isoformat(), "reason": circuit.reason,
                "opened_at": circuit.opened_at.isoformat() if circuit.opened_at else None,
                "http_status": circuit.http_status, "told": circuit.told,
                "endpoint": self.endpoint}
        try:
            self.store.put(KEY, body, self.clock.now())
        except SaveStateFailure as exc:
            logger.error("rate-limit window not saved (a restart before {} would not know "
                         "it) error={}", circuit.open_until.isoformat(), exc)

    def recall(self) -> CircuitState | None:
        """The window saved, while it still runs; None otherwise (or unreadable)."""
        body = self.store.get(KEY)
        if not isinstance(body, dict) or body.get("endpoint") != self.endpoint:
            return None
        try:
            circuit = _circuit(body)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("saved rate-limit window unreadable, ignored body={} error={}",
                           body, exc)
            return None
        now = self.clock.now()
        circuit = _bounded(circuit, now)
        return circuit if circuit.is_open(now) else None


def _bounded(circuit: CircuitState, now: datetime) -> CircuitState:
    """`circuit` ending no later than its own length (the Retry-After given) from `now`, nor
    than LONGEST_BAN from `now`: a clock that ran ahead when it was saved moved its end as far
    (1 h ahead, a 120 s ban waited 1 h 2 min), and every restart would wait a 30-day window."""
    saved_until = circuit.open_until
    assert saved_until is not None
    longest = LONGEST_BAN
    if circuit.opened_at is not None:
        longest = min(longest, max(saved_until - circuit.opened_at, timedelta(0)))
    until = min(saved_until, now + longest)
    if until == saved_until:
        return circuit
    opened = circuit.opened_at.isoformat() if circuit.opened_at else None
    logger.warning("saved rate-limit window cut: saved until={} opened_at={} now={}, kept "
                   "until={} (no longer than its Retry-After from now, {:.0f} s, nor than "
                   "Binance's longest ban, 3 days: the clock that saved it may have run ahead)",
                   saved_until.isoformat(), opened, now.isoformat(), until.isoformat(),
                   longest.total_seconds())
    return replace(circuit, open_until=until)


def _circuit(body: dict[str, Any]) -> CircuitState:
    opened = body.get("opened_at")
    return CircuitState(datetime.fromisoformat(body["open_until"]), str(body["reason"]),
                        opened_at=datetime.fromisoformat(opened) if opened else None,
                        http_status=int(body["http_status"]), told=bool(body.get("told", True)))
