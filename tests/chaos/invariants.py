"""The invariants the chaos test checks after every restart, as plain functions of what
the (fake) exchange and the agent's database hold. Each returns a list of violations."""

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from trader.domain import CLIENT_ID_PREFIX, OrderType
from trader.exchange.sim import Simulator

PREFIX = CLIENT_ID_PREFIX + "-"


@dataclass
class Tally:
    checks: int = 0
    violations: list[str] = field(default_factory=list)

    def record(self, found: list[str]) -> None:
        self.checks += 1
        self.violations += found


def duplicate_orders(accepted_client_ids: list[str]) -> list[str]:
    """One intent, one order: no client id may be accepted by the exchange twice."""
    counts = Counter(c for c in accepted_client_ids if c.startswith(PREFIX))
    return [f"client id {cid} accepted {n} times" for cid, n in counts.items() if n > 1]


def naked_positions(sim: Simulator) -> list[str]:
    """Every open position has a live closing stop-loss covering its size."""
    problems = []
    for position in sim.positions():
        stops = [o for o in sim.open_orders(position.symbol)
                 if o.type is OrderType.STOP_MARKET and o.side is not position.side
                 and (o.close_position or o.quantity >= position.size)]
        if not stops:
            problems.append(f"{position.symbol}: {position.quantity} open without a stop-loss")
    return problems


def orders_without_position(sim: Simulator, symbols: list[str]) -> list[str]:
    """No open orders of ours are left on a symbol whose position is closed."""
    problems = []
    for symbol in symbols:
        if sim.position(symbol).quantity != 0:
            continue
        leftovers = [o.client_id for o in sim.open_orders(symbol) if o.client_id.startswith(PREFIX)]
        if leftovers:
            problems.append(f"{symbol}: flat but orders {leftovers} are still open")
    return problems


def _read_only(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)


def unrecorded_fills(sim: Simulator, symbol: str, db_path: Path, fills_at_boot: int) -> list[str]:
    """Every exchange fill that existed when the agent booted is in the database: the boot
    reconciliation journals the exchange's recent fills, even on an empty disk."""
    with _read_only(db_path) as conn:
        known = {(row[0], row[1]) for row in conn.execute("SELECT symbol, trade_id FROM fills")}
    missing = [f for f in sim.fills(symbol)[:fills_at_boot]
               if (f.symbol, f.trade_id) not in known]
    return [f"fill {f.symbol} {f.trade_id} ({f.client_id} {f.side} {f.quantity} at {f.time:%H:%M:%S}) "
            f"not in the database (has {len(known)} fills)" for f in missing]


def undelivered_alerts(db_path: Path, before: datetime) -> list[str]:
    """The outbox loses nothing: alerts raised before this boot have been delivered since."""
    with _read_only(db_path) as conn:
        rows = conn.execute("SELECT id, name, created_at FROM alerts WHERE status = 'pending' "
                            "AND created_at < ?", [before.isoformat()]).fetchall()
    return [f"alert {row[0]} {row[1]} from {row[2]} still pending" for row in rows]
