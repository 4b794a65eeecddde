"""The simulator's full state as a JSON-safe dict (Decimals and times as text), and back.

Used by the paper exchange to persist a session in the database's key-value state, so a
restarted paper session continues with the same balance, positions and orders. The paper
exchange saves after every order, so it splits the state: `account_json` (balances,
positions, prices, live orders: small) is rewritten each time, while the history (up to
1000 terminal orders and 1000 fills, ~0.5 MB of JSON) goes to append-only `HistoryLog`s
saved in chunks (HISTORY_CHUNK records), of which a save rewrites only the ones that
changed.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from storage.codec import dump, load, to_json
from storage.iso_text import iso_text
from trader.domain import Fill, Order
from trader.exchange.sim_core import SimulatorCore
from trader.exchange.sim_ledger import SimPosition

STATE_VERSION = 1
# Records per saved chunk of a history log. A save rewrites the chunk being filled: at 100
# that was ~17 KB of order history (~330 B an order) per save on average, three saves per
# entry tick; at 20, ~3 KB. The cost: the oldest chunk's check when a chunk begins (a set of
# the kept keys) runs 5x as often, ~1,000 keys each time, and a boot reads 50 rows, not 10.
HISTORY_CHUNK = 20


def dump_state(sim: SimulatorCore) -> dict[str, Any]:
    return {**_account_state(sim),
            "orders": {"live": [dump(o) for o in sim.orders.live.values()],
                       "terminal": [dump(o) for o in sim.orders.terminal.values()]},
            "fills": [dump(f) for f in sim.fill_log]}


def account_json(sim: SimulatorCore, texts: "LiveOrderTexts | None" = None) -> str:
    """Everything but the history, as JSON: `dump_state` without terminal orders and fills.
    `texts`: the live orders' JSON kept from the previous save (`LiveOrderTexts`)."""
    account = json.dumps(_account_state(sim))     # a dict with keys: ends with "}"
    live = (texts or LiveOrderTexts()).of(sim.orders.live.values())
    # the text json.dumps gives the dict with "orders" as its last key (default separators)
    return f'{account[:-1]}, "orders": {{"live": [{", ".join(live)}]}}}}'


class LiveOrderTexts:
    """Each live order's JSON as `account_json` writes it (`json.dumps(dump(order))`), kept
    from one save to the next: an entry tick saves the paper state after each of its
    orders, and every save writes every live order again.

    A text is kept with the very Order it was written from (a frozen value: the same object
    always writes the same text) and given again only for that object; an order that
    changed is a new object. Texts of orders no longer live are dropped at each call.
    One per paper exchange (`SimHistory.live_orders`): it holds only what was written.
    """
    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], tuple[Order, str]] = {}

    def of(self, orders: Iterable[Order]) -> list[str]:
        """The texts of `orders` (distinct (symbol, client id)s, as the live book keys
        them), in their order."""
        kept, fresh = self._kept, {}
        for order in orders:
            key = (order.symbol, order.client_id)
            found = kept.get(key)
            fresh[key] = found if found is not None and found[0] is order \
                else (order, to_json(order))     # == json.dumps(dump(order))
        self._kept = fresh
        return [text for _, text in fresh.values()]


@dataclass
class Chunk:
    number: int
    keys: list[str] = field(default_factory=list)    # which record each text is
    texts: list[str] = field(default_factory=list)   # the records as JSON

    def json(self) -> str:
        return "[" + ", ".join(self.texts) + "]"


class HistoryLog:
    """An append-only log of records (an order's terminal state, a fill), in numbered chunks.

    Replaying it oldest first through the simulator's bounded containers rebuilds what the
    simulator keeps (`keep` distinct records, the latest version of each). The oldest chunk
    is dropped once the newer ones hold `keep` distinct records: it can no longer matter.
    """

    def __init__(self, keep: int, chunk_size: int = HISTORY_CHUNK) -> None:
        self.keep = keep
        self.chunk_size = chunk_size
        self.chunks: list[Chunk] = []
        self.unsaved: set[int] = set()    # chunk numbers changed since the last save
        self.dropped: set[int] = set()    # chunk numbers to delete at the next save

    def append(self, key: str, text: str) -> None:
        if not self.chunks or len(self.chunks[-1].texts) >= self.chunk_size:
            self.chunks.append(Chunk(self.chunks[-1].number + 1 if self.chunks else 0))
            self._prune()
        chunk = self.chunks[-1]
        chunk.keys.append(key)
        chunk.texts.append(text)
        self.unsaved.add(chunk.number)

    def load(self, number: int, records: list[tuple[str, str]]) -> None:
        """Put back a saved chunk (chunks in ascending number)."""
        self.chunks.append(Chunk(number, [k for k, _ in records], [t for _, t in records]))

    def records(self) -> list[str]:
        return [text for chunk in self.chunks for text in chunk.texts]

    def pending(self) -> tuple[dict[int, str], set[int]]:
        """(chunk number -> JSON to write, in ascending number; chunk numbers to delete)
        since the last save."""
        unsaved = self.unsaved
        found: dict[int, str] = {}
        left = len(unsaved)
        for chunk in reversed(self.chunks):     # appends go to the newest: found first
            if not left:
                break
            if chunk.number in unsaved:
                found[chunk.number] = chunk.json()
                left -= 1
        return dict(sorted(found.items())), set(self.dropped)

    def saved(self, written: dict[int, str], deleted: set[int]) -> None:
        self.unsaved -= set(written)
        self.dropped -= deleted

    def _prune(self) -> None:
        while len(self.chunks) > 1 and len({k for c in self.chunks[1:] for k in c.keys}) >= self.keep:
            oldest = self.chunks.pop(0)
            self.unsaved.discard(oldest.number)
            self.dropped.add(oldest.number)


class SimHistory:
    """The simulator's history listener: journals terminal orders and fills as JSON."""

    def __init__(self, max_orders: int, max_fills: int) -> None:
        self.orders = HistoryLog(max_orders)
        self.fills = HistoryLog(max_fills)
        self.live_orders = LiveOrderTexts()     # for `account_json`, save after save

    def order_closed(self, order: Order) -> None:
        self.orders.append(f"{order.symbol}/{order.client_id}", to_json(order))

    def fill_kept(self, fill: Fill) -> None:
        self.fills.append(f"{fill.symbol}/{fill.trade_id}", to_json(fill))

    def seed(self, sim: SimulatorCore) -> None:
        """Journal what a simulator restored from a whole-state dump already holds."""
        for order in sim.orders.terminal.values():
            self.order_closed(order)
        for fill in sim.fill_log:
            self.fill_kept(fill)

    def load_orders(self, number: int, raws: list[dict[str, Any]]) -> None:
        self.orders.load(number, [(f"{r['symbol']}/{r['client_id']}", json.dumps(r))
                                  for r in raws])

    def load_fills(self, number: int, raws: list[dict[str, Any]]) -> None:
        self.fills.load(number, [(f"{r['symbol']}/{r['trade_id']}", json.dumps(r)) for r in raws])

    def full_state(self, account: dict[str, Any]) -> dict[str, Any]:
        """`dump_state`'s dict from an `account_json` dict and the loaded logs."""
        fills = [json.loads(text) for text in self.fills.records()]
        return {**account, "orders": {"live": account["orders"]["live"],
                                      "terminal": [json.loads(t) for t in self.orders.records()]},
                "fills": fills[-self.fills.keep:] if self.fills.keep else []}


def _account_state(sim: SimulatorCore) -> dict[str, Any]:
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
            "funded_until": {s: iso_text(t) for s, t in funding.funded_until.items()},
        },
        "counters": dict(sim.counters),
    }


def load_state(sim: SimulatorCore, state: dict[str, Any]) -> None:
    """Overwrite a fresh simulator's state with a dump made by `dump_state`."""
    version = state.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"simulator state version {version!r} is not {STATE_VERSION}")
    _load_ledger(sim, state["ledger"])
    sim.prices = {s: Decimal(p) for s, p in state["prices"].items()}
    funding = state["funding"]
    sim.funding.restore(
        rates={s: Decimal(r) for s, r in funding["rates"].items()},
        schedules={s: [(datetime.fromisoformat(t), Decimal(r)) for t, r in schedule]
                   for s, schedule in funding["schedules"].items()},
        funded_until={s: datetime.fromisoformat(t) for s, t in funding["funded_until"].items()})
    # Terminal orders first: closing one drops a live order of the same client id, and a
    # client id reused after its order ended is both a terminal and a live order.
    for raw in state["orders"]["terminal"]:
        sim.orders.close(load(Order, raw))
    for raw in state["orders"]["live"]:
        sim.orders.add(load(Order, raw))
    sim.fill_log = [load(Fill, raw) for raw in state["fills"]]
    sim.counters.update({k: int(v) for k, v in state["counters"].items()})


def _load_ledger(sim: SimulatorCore, raw: dict[str, Any]) -> None:
    ledger = sim.ledger
    ledger.initial_balance = Decimal(raw["initial_balance"])
    ledger.wallet = Decimal(raw["wallet"])
    ledger.realized_pnl = Decimal(raw["realized_pnl"])
    ledger.fees = Decimal(raw["fees"])
    ledger.funding = Decimal(raw["funding"])
    ledger.positions = {s: SimPosition(Decimal(p["quantity"]), Decimal(p["entry_price"]))
                        for s, p in raw["positions"].items()}
    ledger.leverages = {s: int(v) for s, v in raw["leverages"].items()}
