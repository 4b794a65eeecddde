"""What is known about every order of ours (and the exchange's positions), keyed by client
id, fed by the user-data stream and by REST alike.

- Stream events (ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE) bring exact statuses and
  positions as they happen.
- A REST snapshot of a symbol (open orders + position) says what is live now; an order of
  ours believed live that the snapshot no longer lists is marked `absent` (its final status
  is not known: the engine probes it by client id).
- A query by client id brings one order, or "the exchange knows no such order".

What is known of an order only moves forward: once an order is FILLED, CANCELED, EXPIRED
or REJECTED nothing makes it live again, and its filled quantity never goes down, whatever
arrives late (a stream event across a reconnect, a REST read taken before an event:
`_newer`). While the user-data stream is healthy and a REST snapshot of a symbol was taken
since it (re)connected (`synced`), the tick reads the tracker and sends no REST request;
otherwise it takes a REST snapshot first. A position an ACCOUNT_UPDATE told since the
stream (re)connected is known too (`told_since_reconnect`), whatever the gap lost: inside
an IP ban, where no snapshot can be taken, the engine acts on that (trader/engine.py
`_heard_in_ban`).

A REST answer telling a fill of ours (a MARKET entry answered FILLED, a partial take, a
cancel that found fills) changes the position before the stream says so: until the
ACCOUNT_UPDATE of that fill (or a later one), or a REST read of the position asked after
the answer, the position kept here is older than our own order (`position_behind`), and a
view built from it would show a position just opened as flat (closed "by hand", then
adopted as somebody else's) or a size just changed as the older one.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from heapq import heappop, heappush
from itertools import count
from types import MappingProxyType

from trader.domain import CLIENT_ID_PREFIX, ZERO, ExchangePosition, Order, OrderStatus
from trader.fast_init import fast_init

FORGET_AFTER = timedelta(hours=6)


@fast_init       # made for every report of an order (twice or more per order)
@dataclass(frozen=True, slots=True)
class TrackedOrder:
    order: Order                        # the last known state
    learned_at: datetime                # when we learned it
    absent_since: datetime | None = None   # believed live, missing from a later snapshot

    @property
    def live(self) -> bool:
        return self.order.status.live and self.absent_since is None


class OrderTracker:
    """See the module docstring. One instance per engine; pure bookkeeping, no I/O."""

    def __init__(self) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        # The same orders by symbol: a tick reads one symbol's orders without scanning all.
        self._by_symbol: dict[str, dict[str, TrackedOrder]] = {}
        # The read-only views `for_symbol` handed out, by symbol: the tick's view asks every
        # tick, and a symbol's dict holds its finished orders of the last hours too. A view
        # is a snapshot: the first change after it copies the dict (`_orders_to_change`),
        # so a view is never changed under its reader, and a quiet symbol is never copied.
        self._views: dict[str, Mapping[str, TrackedOrder]] = {}
        # The live ones among them, kept as each order is kept: a tick's read after a change
        # sorts the symbol's few live orders instead of scanning every order of the last
        # hours (finished orders stay FORGET_AFTER). `_place`: where each client id stands
        # in its symbol's `_by_symbol` dict (the order `live` answers in).
        self._live_by_symbol: dict[str, dict[str, Order]] = {}
        self._place: dict[str, int] = {}
        self._places = count()
        self._live: dict[str, list[Order]] = {}    # live(symbol), until the symbol changes
        self._positions: dict[str, tuple[ExchangePosition, datetime]] = {}
        # The transaction time T of the last ACCOUNT_UPDATE applied, by symbol (see
        # `on_streamed_position`).
        self._streamed_at: dict[str, datetime] = {}
        # symbol -> (the exchange's time of the newest fill a REST answer told, None if it
        # gave none; when the answer came, our clock) while no ACCOUNT_UPDATE or REST read
        # of the position has shown it since (`position_behind`); empty nearly always.
        # Read by the tick's view (ExchangeView.pushed_quote), changed only here.
        self.unshown_fills: dict[str, tuple[datetime | None, datetime]] = {}
        self._synced: set[str] = set()
        # Symbols whose position an ACCOUNT_UPDATE told since the last `invalidate`.
        self._told: set[str] = set()
        # (learned_at, place, client id) of each finished order as it was kept, earliest
        # first: `forget_finished` takes the due ones off the top instead of scanning every
        # order of the last hours. An entry whose order was kept again since (or forgotten)
        # is stale and skipped; each lives FORGET_AFTER at most.
        self._finished_by_time: list[tuple[datetime, int, str]] = []

    # --- feeding ------------------------------------------------------------------------
    def on_order(self, order: Order, at: datetime) -> None:
        """One order's state from the stream or a query, kept monotonic (`_newer`): a late
        report never lowers the filled quantity nor revives a finished order."""
        known = self._orders.get(order.client_id)
        if known is not None:
            if known.order.symbol != order.symbol:
                self._drop(known.order.symbol, order.client_id)
            else:
                if known.order is order and known.learned_at == at \
                        and known.absent_since is None:
                    # The very report kept already, at the same moment (the paper
                    # exchange's stream event of an order whose answer the executor fed
                    # first: the same object, stamped with the same time): `_newer` keeps
                    # it, and keeping it again stores an equal TrackedOrder (same order,
                    # time and absence): nothing anyone reads could change. Not taken for
                    # a later time (learned_at moves: `on_snapshot`) nor an order marked
                    # absent (a report clears that).
                    return
                merged = _newer(known.order, order)
                if merged is None:
                    return
                order = merged
        self._keep(TrackedOrder(order, at))

    def learned(self, answer: Order | None, at: datetime) -> Order | None:
        """An order a REST call answered (`at`: when), fed as any report is; what the tracker
        now knows of it: the merge of this answer with what the stream said before
        (`_newer`). Every decision on a REST read of one of our orders is taken from this,
        never from the answer alone, because an answer can know less than the stream: a
        triggered conditional order reads TRIGGERED, with no executed quantity, until its
        child order finishes (GET /fapi/v1/algoOrder, https://developers.binance.com/docs/
        derivatives/usds-margined-futures/trade/rest-api/Query-Algo-Order) while
        ALGO_UPDATE and the child's ORDER_TRADE_UPDATE have said it filled; a read served
        from before an ORDER_TRADE_UPDATE lacks its fills. None: the answer named no order."""
        if answer is None:
            return None
        before = self._orders.get(answer.client_id)
        filled = before.order.filled_qty if before is not None else ZERO
        self.on_order(answer, at)
        known = self._orders.get(answer.client_id)
        order = known.order if known is not None else answer
        if order.filled_qty > filled:
            self._fill_answered(order, at)
        return order

    def _fill_answered(self, order: Order, at: datetime) -> None:
        """A REST answer (`at`: when it came) told a fill of `order` nobody had told
        before: the position kept is behind it until shown (`position_behind`)."""
        symbol, filled_at = order.symbol, order.updated_at
        shown = self._streamed_at.get(symbol)
        if filled_at is not None and shown is not None and filled_at < shown:
            return          # an ACCOUNT_UPDATE after the fill was applied already
        known = self.unshown_fills.get(symbol)
        if known is not None:
            # the newest of both; a fill of unknown time waits for a read
            filled_at = None if filled_at is None or known[0] is None \
                else max(filled_at, known[0])
            at = max(at, known[1])
        self.unshown_fills[symbol] = (filled_at, at)

    def _keep(self, tracked: TrackedOrder) -> None:
        order = tracked.order
        client_id, symbol = order.client_id, order.symbol
        self._orders[client_id] = tracked
        orders = self._orders_to_change(symbol)
        if client_id not in orders:                 # a new key goes last in the dict
            self._place[client_id] = next(self._places)
        orders[client_id] = tracked
        live = self._live_by_symbol.setdefault(symbol, {})
        if tracked.live:
            live[client_id] = order
        else:
            live.pop(client_id, None)
            heappush(self._finished_by_time,
                     (tracked.learned_at, next(self._places), client_id))
        self._live.pop(symbol, None)

    def _drop(self, symbol: str, client_id: str) -> None:
        """Forget the order `client_id` under `symbol` (its id may be kept again later)."""
        self._orders_to_change(symbol).pop(client_id, None)
        self._live_by_symbol[symbol].pop(client_id, None)
        self._live.pop(symbol, None)

    def on_missing(self, client_id: str, at: datetime) -> None:
        """A query by client id found nothing: the order is not live (if it ever existed)."""
        known = self._orders.get(client_id)
        if known is not None and known.order.status.live:
            self._keep(replace(known, absent_since=known.absent_since or at))

    def on_trigger_rejected(self, symbol: str, order_id: str, reason: str,
                            at: datetime) -> None:
        """The exchange says the conditional order `order_id` triggered and its order was
        rejected (`reason`, its words): that order is over, REJECTED, with the reason its
        alert gives. Named by the exchange's id only: matched against each conditional
        order's `exchange_id`, whose kind prefix ("algo:<algoId>") the adapter adds. An order not
        known here is left to the reads (nothing to say it is ours)."""
        for tracked in list(self._by_symbol.get(symbol, {}).values()):
            order = tracked.order
            # only a stop or take-profit triggers: a plain order's id may equal an algo id
            if not order.type.conditional or order_id not in (
                    order.exchange_id, order.exchange_id.rpartition(":")[2]):
                continue
            if order.status.terminal:
                if not order.reason:
                    self._keep(replace(tracked, order=replace(order, reason=reason)))
                continue
            self.on_order(replace(order, status=OrderStatus.REJECTED, reason=reason,
                                  updated_at=at), at)

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

    def on_streamed_position(self, position: ExchangePosition, at: datetime) -> bool:
        """A position an ACCOUNT_UPDATE pushed, `at` its transaction time T; False (and not
        applied) when older than the last one applied for the symbol, or than the last
        change a REST read reported (`on_read_position`). Binance orders the events of one
        type on a connection strictly by T ("Message Ordering Guarantee",
        https://developers.binance.com/docs/derivatives/usds-margined-futures/
        user-data-streams), so an older one is a replay or a late duplicate: it would undo
        a newer position (a flat one closed a LONG that was still open)."""
        last = self._streamed_at.get(position.symbol)
        if last is not None and at < last:
            return False
        self._streamed_at[position.symbol] = at
        self._told.add(position.symbol)
        self.on_position(position, at)
        unshown = self.unshown_fills
        if unshown:
            fill = unshown.get(position.symbol)
            if fill is not None and fill[0] is not None and at >= fill[0]:
                del unshown[position.symbol]      # this update comes from after our fill
        return True

    def on_read_position(self, position: ExchangePosition, at: datetime) -> None:
        """A position read over REST at `at`: an ACCOUNT_UPDATE older than the exchange's
        last change of it (`updated_at`, its clock) is older than this read too. A read
        whose last change is older than one already applied (an ACCOUNT_UPDATE's T, or a
        read before it) was answered from a state before that change: its size and entry
        are not the position's, only its mark and leverage are kept."""
        symbol, changed = position.symbol, position.updated_at
        fill = self.unshown_fills.get(symbol)
        if fill is not None and at >= fill[1]:
            # asked after the answer of our fill: Binance's read knows it (a flat row of
            # positionRisk carries no updateTime to compare with the fill's)
            del self.unshown_fills[symbol]
        last = self._streamed_at.get(symbol)
        known = self._positions.get(symbol)
        if changed is not None and last is not None and changed < last and known is not None:
            kept = known[0]
            if (kept.quantity, kept.entry_price) != (position.quantity, position.entry_price):
                self.on_position(replace(kept, mark_price=position.mark_price,
                                         leverage=position.leverage), known[1])
                return
        self.on_position(position, at)
        if changed is not None and (last is None or changed > last):
            self._streamed_at[symbol] = changed

    def on_leverage(self, symbol: str, leverage: int) -> None:
        """The symbol's leverage changed on the exchange (ACCOUNT_CONFIG_UPDATE): the known
        position has it from now on (Binance applies it to an open position too), though
        no position update comes with it."""
        known = self._positions.get(symbol)
        if known is not None and known[0].leverage != leverage:
            self._positions[symbol] = (replace(known[0], leverage=leverage), known[1])

    def mark_synced(self, symbol: str) -> None:
        self._synced.add(symbol)

    def invalidate(self) -> None:
        """The stream was down: what it would have said is unknown; re-read over REST."""
        self._synced.clear()
        self._told.clear()

    # --- reading ------------------------------------------------------------------------
    def synced(self, symbol: str) -> bool:
        return symbol in self._synced

    def told_since_reconnect(self, symbol: str) -> bool:
        """Whether an ACCOUNT_UPDATE told the symbol's position since the stream last
        (re)connected (`invalidate`): that position is the exchange's at the event's time,
        whatever the gap lost. The orders may be older than the gap: unlike `synced`, this
        vouches for the position alone."""
        return symbol in self._told

    def get(self, client_id: str | None) -> TrackedOrder | None:
        return self._orders.get(client_id) if client_id else None

    def live(self, symbol: str) -> list[Order]:
        """The symbol's live orders, in the order `for_symbol` lists them."""
        live = self._live.get(symbol)     # [] too is kept: a flat symbol, most ticks
        return list(live if live is not None else self._live_of(symbol))

    def has_live(self, symbol: str) -> bool:
        """Whether `live(symbol)` has any order (ours or anybody's), without the copy."""
        live = self._live.get(symbol)
        return bool(live if live is not None else self._live_of(symbol))

    def _live_of(self, symbol: str) -> list[Order]:
        live = self._live_by_symbol.get(symbol)
        place = self._place.__getitem__
        orders = self._live[symbol] = [live[client_id] for client_id in
                                       sorted(live, key=place)] if live else []
        return orders

    def ours_live(self, symbol: str) -> list[Order]:
        return [o for o in self.live(symbol) if o.client_id.startswith(CLIENT_ID_PREFIX + "-")]

    def position(self, symbol: str) -> ExchangePosition | None:
        known = self._positions.get(symbol)
        return known[0] if known else None

    def positions_seen(self) -> dict[str, tuple[ExchangePosition, datetime]]:
        """Every symbol's position as last told (a stream event, a REST read), and when:
        the user-data stream tells the positions of every symbol of the account, traded or
        not."""
        return dict(self._positions)

    def position_behind(self, symbol: str) -> bool:
        """Whether the symbol's position kept here predates a fill of ours a REST answer
        told (see the module docstring): no view may be built from it, the position is
        read over REST (trader/exchange_view.py)."""
        unshown = self.unshown_fills
        return bool(unshown) and symbol in unshown

    def forget_finished(self, now: datetime) -> int:
        """Drop finished orders learned long ago (bounded memory); returns how many."""
        by_time = self._finished_by_time
        forgotten = 0
        while by_time and now - by_time[0][0] > FORGET_AFTER:
            learned_at, _, client_id = heappop(by_time)
            tracked = self._orders.get(client_id)
            if tracked is None or tracked.live or tracked.learned_at != learned_at:
                continue        # kept again since, or forgotten: a stale entry
            del self._orders[client_id]
            self._drop(tracked.order.symbol, client_id)
            del self._place[client_id]
            forgotten += 1
        return forgotten

    def for_symbol(self, symbol: str) -> Mapping[str, TrackedOrder]:
        """Everything known about the symbol's orders, by client id: a read-only snapshot,
        the same one until an order of the symbol changes."""
        view = self._views.get(symbol)
        if view is None:
            orders = self._by_symbol.setdefault(symbol, {})
            view = self._views[symbol] = MappingProxyType(orders)
        return view

    def _orders_to_change(self, symbol: str) -> dict[str, TrackedOrder]:
        """The symbol's dict, to be changed: a copy first when a view of it was handed out
        (that view keeps what it said)."""
        orders = self._by_symbol.get(symbol)
        if orders is None:
            orders = self._by_symbol[symbol] = {}
        elif self._views.pop(symbol, None) is not None:
            orders = self._by_symbol[symbol] = dict(orders)
        return orders


def _newer(known: Order, order: Order) -> Order | None:
    """What to keep when `order` is reported after `known` (same client id); None: `order`
    is older, keep `known` as it is.

    Binance promises order only per event type on one connection ("Message Ordering
    Guarantee", https://developers.binance.com/docs/derivatives/usds-margined-futures/
    user-data-streams): across a reconnect, between ALGO_UPDATE and ORDER_TRADE_UPDATE or
    against a REST read taken before an event, an older state can come last. Older is: a
    live report of a finished order, a smaller cumulative filled quantity (z, executedQty),
    or, for two live reports, an earlier exchange time (T, updateTime). The first finished
    report of a live order is always taken (statuses only move forward: a stop cancelled
    must never read live), with the larger filled quantity of the two (an ALGO_UPDATE
    without "aq" after its child order's fill); a finished order reported finished again
    with less filled keeps what it had (FILLED, then an ALGO_UPDATE FINISHED "aq": "0"); a
    live report with more filled than a finished one adds its fill to the finished state (a
    cancel's answer written before the trade that preceded it, DELETE /fapi/v1/order
    "executedQty": "0", then the stream's PARTIALLY_FILLED: CANCELED, with that fill)."""
    if known.status.terminal:
        if order.status.live and order.filled_qty > known.filled_qty:
            return replace(known, filled_qty=order.filled_qty, avg_price=order.avg_price)
        if order.status.live or order.filled_qty < known.filled_qty:
            return None
    if order.filled_qty < known.filled_qty:
        if order.status.live:
            return None
        return replace(order, filled_qty=known.filled_qty, avg_price=known.avg_price)
    if (order.status.live and known.updated_at is not None and order.updated_at is not None
            and order.updated_at < known.updated_at):
        return None
    if known.reason and not order.reason and not order.status.live:
        # a REST read of a rejected stop does not say why; the stream did
        return replace(order, reason=known.reason)
    return order
