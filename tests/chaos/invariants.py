"""The invariants the chaos test checks after every restart, as plain functions of what
the (fake) exchange and the agent's database hold. Each returns a list of violations.

The invariants themselves are defined once, in trader/invariant_checks.py, and the live
agent checks the same ones (trader/invariant_monitor.py): this module only reads the
simulator and the agent's database (read-only: the agent has it open) into the shapes those
checks take (exchange positions, live orders, fills, waiting alerts) and words the result.

`settled` says when a check is fair: the agent has had its chance to protect every position
(exactly one live stop-loss each) and to tidy flat symbols. The chaos test polls it with a
bound instead of sleeping a fixed time that assumes an idle machine.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.fakes.binance_faults import WindowViolation
from trader import invariant_checks as checks
from trader.domain import ExchangePosition
from trader.exchange.sim import Simulator
from trader.invariant_checks import InvariantKind, Violation, WaitingAlert


@dataclass
class Tally:
    checks: int = 0
    violations: list[str] = field(default_factory=list)

    def record(self, found: list[str]) -> None:
        self.checks += 1
        self.violations += found


def lines(found: Sequence[Violation]) -> list[str]:
    return [violation.line for violation in found]


def duplicate_orders(accepted_client_ids: list[str]) -> list[str]:
    """One intent, one order: no client id may be accepted by the exchange twice (each
    acceptance the fake server counted is an order of its own)."""
    return lines(checks.duplicate_client_ids(
        (client_id, str(number)) for number, client_id in enumerate(accepted_client_ids)))


def open_positions(sim: Simulator) -> list[ExchangePosition]:
    return [p for p in sim.positions() if p.quantity != 0]


def stop_violations(sim: Simulator) -> list[Violation]:
    found = []
    for position in open_positions(sim):
        found += checks.stop_loss_violations(position, sim.open_orders(position.symbol))
    return found


def naked_positions(sim: Simulator) -> list[str]:
    """Every open position has a live closing stop-loss covering its size."""
    return lines([v for v in stop_violations(sim) if v.kind is InvariantKind.NO_STOP])


def not_one_stop(sim: Simulator) -> list[str]:
    """Every open position has exactly one live stop-loss, covering its size (NO_STOP,
    EXTRA_STOP: a stop replaced new-first whose old order outlived the restart)."""
    return lines(stop_violations(sim))


def orders_without_position(sim: Simulator, symbols: list[str]) -> list[str]:
    """No open orders of ours are left on a symbol whose position is closed."""
    found = []
    for symbol in symbols:
        found += checks.flat_symbol_violations(symbol, sim.position(symbol),
                                               sim.open_orders(symbol))
    return lines(found)


def _read_only(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)


def unrecorded_fills(sim: Simulator, symbol: str, db_path: Path, fills_at_boot: int) -> list[str]:
    """Every exchange fill that existed when the agent booted is in the database: the boot
    reconciliation journals the exchange's recent fills, even on an empty disk."""
    with _read_only(db_path) as conn:
        known = {row[0] for row in conn.execute("SELECT trade_id FROM fills WHERE symbol = ?",
                                                [symbol])}
    return lines(checks.unjournaled_fills(sim.fills(symbol)[:fills_at_boot], known))


def undelivered_alerts(db_path: Path, before: datetime) -> list[str]:
    """The outbox loses nothing: alerts raised before this boot have been delivered since."""
    with _read_only(db_path) as conn:
        rows = conn.execute("SELECT id, name, created_at FROM alerts WHERE status = 'pending' "
                            "AND created_at < ?", [before.isoformat()]).fetchall()
    waiting = [WaitingAlert(row[0], row[1], datetime.fromisoformat(row[2])) for row in rows]
    return lines(checks.undelivered_alerts(waiting, before))


def requests_inside_retry_after(violations: Sequence[WindowViolation]) -> list[str]:
    """After a 429 / 418 with Retry-After N, nothing reaches the exchange for N seconds
    (counted by the fake server: FakeBinance.retry_after_watch)."""
    return [f"request inside a Retry-After window: {v}" for v in violations]


def settled(sim: Simulator, symbols: list[str]) -> bool:
    """Every open position has exactly one live stop-loss, and no order of ours is left on a
    flat symbol: what the agent reaches within its debounce once nothing disturbs it."""
    return not stop_violations(sim) and not orders_without_position(sim, symbols)
