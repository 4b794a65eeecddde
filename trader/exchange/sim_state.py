"""The simulator's full state as a JSON-safe dict (Decimals and times as text), and back.

Used by the paper exchange to persist a session in the database's key-value state, so a
restarted paper session continues with the same balance, positions and orders.
"""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from storage.codec import dump, load
from trader.domain import Fill, Order
from trader.exchange.sim_ledger import SimPosition

if TYPE_CHECKING:
    from trader.exchange.sim import Simulator

STATE_VERSION = 1


def dump_state(sim: "Simulator") -> dict[str, Any]:
    ledger, funding = sim.ledger, sim.funding
    return {
        "version": STATE_VERSION,
        "ledger": {
            "initial_balance": str(ledger.initial_balance), "wallet": str(ledger.wallet),
            "realized_pnl": str(ledger.realized_pnl), "fees": str(ledger.fees),
            "funding": str(ledger.funding),
            "positions": {s: {"quantity": str(p.quantity), "entry_price": str(p.entry_price)}
                          for s, p in ledger.positions.items()},
            "leverages": dict(ledger.leverages),
        },
        "prices": {s: str(p) for s, p in sim.prices.items()},
        "funding": {
            "rates": {s: str(r) for s, r in funding.rates.items()},
            "schedules": {s: [[t.isoformat(), str(r)] for t, r in schedule]
                          for s, schedule in funding.schedules.items()},
            "funded_until": {s: t.isoformat() for s, t in funding.funded_until.items()},
        },
        "orders": {"live": [dump(o) for o in sim.orders.live.values()],
                   "terminal": [dump(o) for o in sim.orders.terminal.values()]},
        "fills": [dump(f) for f in sim.fill_log],
        "counters": dict(sim.counters),
    }


def load_state(sim: "Simulator", state: dict[str, Any]) -> None:
    """Overwrite a fresh simulator's state with a dump made by `dump_state`."""
    version = state.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"simulator state version {version!r} is not {STATE_VERSION}")
    _load_ledger(sim, state["ledger"])
    sim.prices = {s: Decimal(p) for s, p in state["prices"].items()}
    funding = state["funding"]
    sim.funding.rates = {s: Decimal(r) for s, r in funding["rates"].items()}
    sim.funding.schedules = {
        s: [(datetime.fromisoformat(t), Decimal(r)) for t, r in schedule]
        for s, schedule in funding["schedules"].items()}
    sim.funding.funded_until = {s: datetime.fromisoformat(t)
                                for s, t in funding["funded_until"].items()}
    for raw in state["orders"]["live"]:
        sim.orders.add(load(Order, raw))
    for raw in state["orders"]["terminal"]:
        sim.orders.close(load(Order, raw))
    sim.fill_log = [load(Fill, raw) for raw in state["fills"]]
    sim.counters.update({k: int(v) for k, v in state["counters"].items()})


def _load_ledger(sim: "Simulator", raw: dict[str, Any]) -> None:
    ledger = sim.ledger
    ledger.initial_balance = Decimal(raw["initial_balance"])
    ledger.wallet = Decimal(raw["wallet"])
    ledger.realized_pnl = Decimal(raw["realized_pnl"])
    ledger.fees = Decimal(raw["fees"])
    ledger.funding = Decimal(raw["funding"])
    ledger.positions = {s: SimPosition(Decimal(p["quantity"]), Decimal(p["entry_price"]))
                        for s, p in raw["positions"].items()}
    ledger.leverages = {s: int(v) for s, v in raw["leverages"].items()}
