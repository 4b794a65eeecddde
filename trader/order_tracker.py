"""What is known about every order of ours (and the exchange's positions), keyed by client
id, fed by the user-data stream and by REST alike.

- Stream events (ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE) bring exact statuses and
  positions as they happen.
- A REST snapshot of a symbol (open orders + position) says what is live now; an order of
  ours believed live that the snapshot no longer lists is marked `absent` (its final status
  is not known: the engine probes it by client id).
- A query by client id brings one order, or "the exchange knows no such order".

Order statuses only move forward: once an order is FILLED, CANCELED, EXPIRED or REJECTED
nothing makes it live again, whatever arrives late. While the user-data stream is healthy
and a REST snapshot of a symbol was taken since it (re)connected (`synced`), the tick reads
the tracker and sends no REST request; otherwise it takes a REST snapshot first.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from trader.domain import CLIENT_ID_PREFIX, ExchangePosition, Order

FORGET_AFTER = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class TrackedOrder:
    order: Order                        # the last known state
    learned_at: datetime                # when we learned it
    absent_since: datetime | None = None   # believed live, missing from a later snapshot

    @property
    def live(self) -> bool:
        return self.order.status.live and self.absent_since is None

    @property
    def remaining(self):  # type: ignore[no-untyped-def]
        return self.order.quantity - self.order.filled_qty


class OrderTracker:
    """See the module docstring. One instance per engine; pure bookkeeping, no I/O."""

    def __init__(self) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        # The same orders by symbol: a tick reads one symbol's orders without scanning all.
        self._by_symbol: dict[str, dict[str, TrackedOrder]] = {}
        self._live: dict[str, list[Order]] = {}    # live(symbol), until the symbol changes
        self._positions: dict[str, tuple[ExchangePosition, datetime]] = {}
        self._synced: set[str] = set()

    # --- feeding ------------------------------------------------------------------------
    def on_order(self, order: Order, at: datetime) -> None:
        """One order's state from the stream or a query (a late live report never revives a
        finished order)."""
        known = self._orders.get(order.client_id)
        if known is not None and known.order.status.terminal and order.status.live:
            return
        if known is not None and known.order.symbol != order.symbol:
            self._by_symbol[known.order.symbol].pop(order.client_id, None)
            self._live.pop(known.order.symbol, None)
        self._keep(TrackedOrder(order, at))

    def _keep(self, tracked: TrackedOrder) -> None:
        self._orders[tracked.order.client_id] = tracked
        self._by_symbol.setdefault(tracked.order.symbol, {})[tracked.order.client_id] = tracked
        self._live.pop(tracked.order.symbol, None)

    def on_missing(self, client_id: str, at: datetime) -> None:
        """A query by client id found nothing: the order is not live (if it ever existed)."""
        known = self._orders.get(client_id)
        if known is not None and known.order.status.live:
            self._keep(replace(known, absent_since=known.absent_since or at))

    def on_snapshot(self, symbol: str, live_orders: list[Order], at: datetime) -> None:
        """A REST list of the symbol's open orders, requested at `at`."""
        listed = {order.client_id for order in live_orders}
        for order in live_orders:
            self.on_order(order, at)
        for client_id, tracked in list(self._by_symbol.get(symbol, {}).items()):
            if (client_id not in listed and tracked.order.status.live
                    and tracked.learned_at <= at and tracked.absent_since is None):
                self._keep(replace(tracked, absent_since=at))

    def on_position(self, position: ExchangePosition, at: datetime) -> None:
        self._positions[position.symbol] = (position, at)

    def mark_synced(self, symbol: str) -> None:
        self._synced.add(symbol)

    def invalidate(self) -> None:
        """The stream was down: what it would have said is unknown; re-read over REST."""
        self._synced.clear()

    # --- reading ------------------------------------------------------------------------
    def synced(self, symbol: str) -> bool:
        return symbol in self._synced

    def get(self, client_id: str | None) -> TrackedOrder | None:
        return self._orders.get(client_id) if client_id else None

    def live(self, symbol: str) -> list[Order]:
        live = self._live.get(symbol)
        if live is None:
            live = [t.order for t in self._by_symbol.get(symbol, {}).values() if t.live]
            self._live[symbol] = live
        return list(live)

    def has_live(self, symbol: str) -> bool:
        """Whether `live(symbol)` has any order (ours or anybody's), without the copy."""
        live = self._live.get(symbol)
        if live is None:
            live = self._live[symbol] = [t.order for t in self._by_symbol.get(symbol, {}).values()
                                         if t.live]
        return bool(live)

    def ours_live(self, symbol: str) -> list[Order]:
        return [o for o in self.live(symbol) if o.client_id.startswith(CLIENT_ID_PREFIX + "-")]

    def position(self, symbol: str) -> ExchangePosition | None:
        known = self._positions.get(symbol)
        return known[0] if known else None

    def forget_finished(self, now: datetime) -> int:
        """Drop finished orders learned long ago (bounded memory); returns how many."""
        old = [cid for cid, t in self._orders.items()
               if not t.live and now - t.learned_at > FORGET_AFTER]
        for client_id in old:
            tracked = self._orders.pop(client_id)
            del self._by_symbol[tracked.order.symbol][client_id]
            self._live.pop(tracked.order.symbol, None)
        return len(old)

    def for_symbol(self, symbol: str) -> dict[str, TrackedOrder]:
        """Everything known about the symbol's orders, by client id."""
        return dict(self._by_symbol.get(symbol, {}))
