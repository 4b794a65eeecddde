"""The exchange's own state told to the operator once per change: the rate-limit circuit
opening and closing (API_CIRCUIT_OPEN / API_CIRCUIT_CLOSED), a symbol's trading rules
changing (SYMBOL_RULES)."""

from collections.abc import Mapping
from datetime import datetime

from trader.alerter import Alerter
from trader.alerts import Alert, AlertName
from trader.clock import Clock
from trader.exchange.base import Exchange
from trader.executor import Executor
from trader.position import Position


class ExchangeHealth:
    """Run `watch_circuit()` before and after the symbols, `report_rules_changes()` once a
    tick."""

    def __init__(self, exchange: Exchange, executor: Executor, alerter: Alerter,
                 clock: Clock) -> None:
        self.exchange = exchange
        self.executor = executor
        self.alerter = alerter
        self.clock = clock
        self.circuit_alerted: datetime | None = None   # opened_at of the circuit alerted

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

    def report_rules_changes(self) -> None:
        """One SYMBOL_RULES alert per change the executor saw ("BTCUSDT: tick size ...")."""
        if not self.executor.rules_changes:
            return          # nearly every tick: no new list to swap in
        changes, self.executor.rules_changes = self.executor.rules_changes, []
        for line in changes:
            self.alerter.publish(Alert(AlertName.SYMBOL_RULES, f"trading rules changed: {line}",
                                       line.split(":", 1)[0]), self.clock.now())


def _protection_text(positions: Mapping[str, Position]) -> str:
    """What protects the open positions while no request can be sent: the ones whose stop
    is not on the exchange are named (their replacement waits for the window's end)."""
    bare = sorted(symbol for symbol, position in positions.items()
                  if position.state.open and not position.stop.covers(position.quantity))
    if not bare:
        return "Positions stay protected by their exchange-side orders."
    return (f"{', '.join(bare)} {'has' if len(bare) == 1 else 'have'} NO stop-loss on the "
            "exchange until then: the replacement is sent when the window ends.")
