"""The invariants an agent's account must satisfy, as pure checks of what the exchange and
the database hold; one definition for the live monitor (trader/invariant_monitor.py) and
the chaos test (tests/chaos/invariants.py), which pass the same shapes: exchange
positions, live orders, fills, intents, the alert outbox.

Each check returns `Violation`s: a kind, the symbol ("" when account-wide) and one line of
evidence (client ids, quantities) an operator can act on. The checks say what is wrong now;
telling a lasting violation from a transient one (a stop replaced new-first is briefly two
stops) is the monitor's job.

    for violation in stop_loss_violations(position, live_orders):
        print(violation.line)    # "EXTRA_STOP BTCUSDT: LONG 0.1: 2 live stop-losses ..."

No I/O, no clock: time is passed in.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from trader.domain import (
    CLIENT_ID_PREFIX,
    ZERO,
    ClientId,
    ExchangePosition,
    Fill,
    Intent,
    IntentStatus,
    Order,
    OrderRole,
    OrderType,
    plain,
)
from trader.position import Position, PositionState

OURS = CLIENT_ID_PREFIX + "-"


class InvariantKind(StrEnum):
    NO_STOP = "NO_STOP"                    # an open position without a stop-loss covering it
    EXTRA_STOP = "EXTRA_STOP"              # more than one stop-loss on an open position
    TAKE_PROFIT = "TAKE_PROFIT"            # take-profits not covering the position exactly
    FLAT_ORDERS = "FLAT_ORDERS"            # an order of ours on a symbol with no position
    DUPLICATE_ID = "DUPLICATE_ID"          # one client id of ours on two exchange orders
    UNJOURNALED_FILL = "UNJOURNALED_FILL"  # an exchange fill missing from the database
    ALERT_BACKLOG = "ALERT_BACKLOG"        # alerts waiting too long to be delivered
    STUCK_INTENT = "STUCK_INTENT"          # an order sent, its fate unknown past recvWindow
    POSITION_MISMATCH = "POSITION_MISMATCH"  # the database's position is not the exchange's
    STREAM_SILENT = "STREAM_SILENT"        # a push stream down (the agent polls meanwhile)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant with its evidence (`client_ids`: the orders involved; `about`:
    what it concerns when its kind does not say, in words for its all-clear: the streams)."""
    kind: InvariantKind
    symbol: str
    text: str
    client_ids: tuple[str, ...] = ()
    about: str = ""

    @property
    def key(self) -> tuple[InvariantKind, str]:
        """What one episode is about: a kind on a symbol."""
        return self.kind, self.symbol

    @property
    def line(self) -> str:
        return f"{self.kind} {self.symbol or 'account'}: {self.text}"


class WaitingAlert(NamedTuple):
    """An alert in the outbox not delivered yet, and since when it has been waiting."""
    id: int | None
    name: str
    since: datetime


# --- orders protecting a position -------------------------------------------------------
def closing_orders(position: ExchangePosition, live: Iterable[Order],
                   types: Collection[OrderType]) -> list[Order]:
    """The live orders of `types` on the side that closes `position` (anybody's)."""
    side = position.side
    return [o for o in live if o.symbol == position.symbol and o.type in types
            and side is not None and o.side is side.opposite and o.status.live]


def closes(order: Order, size: Decimal) -> Decimal:
    """What an order still closes of a position of `size` (closePosition closes it all)."""
    return order.closes(size)


def describe(order: Order, size: Decimal) -> str:
    what = "closePosition" if order.close_position else plain(closes(order, size))
    trigger = f" at {plain(order.trigger_price)}" if order.trigger_price is not None else ""
    return f"{order.client_id} ({what}{trigger})"


def _holding(position: ExchangePosition) -> str:
    side = position.side
    return f"{side.label if side else 'FLAT'} {plain(position.size)}"


def stop_loss_violations(position: ExchangePosition, live: Sequence[Order]) -> list[Violation]:
    """An open position has exactly one live stop-loss, and it covers the whole size.
    NO_STOP when none covers it (placed by anybody: a stop placed by hand is adopted as the
    leg); EXTRA_STOP when more than one stop is live (when one fires the other stays)."""
    if position.quantity == 0:
        return []
    stops = closing_orders(position, live, (OrderType.STOP_MARKET,))
    listed = ", ".join(describe(o, position.size) for o in stops)
    ids = tuple(o.client_id for o in stops)
    found = []
    if not any(closes(o, position.size) >= position.size for o in stops):
        found.append(Violation(
            InvariantKind.NO_STOP, position.symbol, f"{_holding(position)} open without a "
            "stop-loss covering it" + (f" (live: {listed})" if stops else ""), ids))
    if len(stops) > 1:
        found.append(Violation(
            InvariantKind.EXTRA_STOP, position.symbol, f"{_holding(position)} has "
            f"{len(stops)} live stop-losses: {listed}", ids))
    return found


def take_profit_violations(position: ExchangePosition, live: Sequence[Order]) -> list[Violation]:
    """An open position's live take-profits (one, or a TP1 + TP2 split) close exactly its
    size: less leaves part of it without a target, more is a take-profit too many."""
    if position.quantity == 0:
        return []
    targets = [o for o in closing_orders(position, live, (OrderType.TAKE_PROFIT_MARKET,
                                                           OrderType.LIMIT))
               if o.type is OrderType.TAKE_PROFIT_MARKET or _role(o) is OrderRole.TAKE_PROFIT]
    covered = sum((closes(o, position.size) for o in targets), ZERO)
    if covered == position.size:
        return []
    listed = ", ".join(describe(o, position.size) for o in targets) or "none"
    return [Violation(InvariantKind.TAKE_PROFIT, position.symbol,
                      f"{_holding(position)}: take-profits close {plain(covered)} "
                      f"(live: {listed})", tuple(o.client_id for o in targets))]


def _role(order: Order) -> OrderRole | None:
    parsed = ClientId.parse(order.client_id)
    return parsed.role if parsed else None


def flat_symbol_violations(symbol: str, position: ExchangePosition | None,
                           live: Sequence[Order], allowed: Collection[str] = ()) -> list[Violation]:
    """No order of ours outlives its position: on a flat symbol each one is a leftover (a
    take-profit would act on the next position). `allowed`: client ids that may rest on a
    flat symbol (the entry of a position being entered)."""
    if position is not None and position.quantity != 0:
        return []
    leftovers = [o for o in live if o.symbol == symbol and o.status.live
                 and o.client_id.startswith(OURS) and o.client_id not in allowed]
    if not leftovers:
        return []
    listed = ", ".join(f"{o.client_id} ({o.type.value} {o.side.value} "
                       f"{plain(o.quantity - o.filled_qty)})" for o in leftovers)
    return [Violation(InvariantKind.FLAT_ORDERS, symbol, f"flat, but orders of ours are "
                      f"still open: {listed}", tuple(o.client_id for o in leftovers))]


# --- one intent, one order; every fill journaled -------------------------------------------
def duplicate_client_ids(sightings: Iterable[tuple[str, str]]) -> list[Violation]:
    """One client id, one exchange order: `sightings` are (client id, exchange order id)
    pairs (fills, accepted orders); a client id of ours seen on two orders was accepted
    twice (an intent sent again)."""
    orders: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for client_id, order_id in sightings:
        if client_id.startswith(OURS) and order_id and order_id not in orders[client_id]:
            orders[client_id].add(order_id)
            counts[client_id] += 1
    return [Violation(InvariantKind.DUPLICATE_ID, _symbol_of(client_id),
                      f"client id {client_id} accepted {n} times (orders "
                      f"{', '.join(sorted(orders[client_id]))})", (client_id,))
            for client_id, n in counts.items() if n > 1]


def _symbol_of(client_id: str) -> str:
    parsed = ClientId.parse(client_id)
    return parsed.symbol if parsed else ""


def unjournaled_fills(exchange_fills: Sequence[Fill], journaled: Collection[str],
                      settled_before: datetime | None = None) -> list[Violation]:
    """Every exchange fill is in the database (`journaled`: its trade ids for the symbol).
    Fills at or after `settled_before` are not expected yet (the journal's own lag)."""
    missing = [f for f in exchange_fills if f.trade_id not in journaled
               and (settled_before is None or f.time < settled_before)]
    by_symbol: dict[str, list[Fill]] = defaultdict(list)
    for fill in missing:
        by_symbol[fill.symbol].append(fill)
    return [Violation(InvariantKind.UNJOURNALED_FILL, symbol, "fills not in the database: "
                      + ", ".join(f"trade {f.trade_id} ({f.client_id or '?'} {f.side.value} "
                                  f"{plain(f.quantity)} at {f.time:%H:%M:%S})" for f in fills)
                      + f" ({len(journaled)} journaled)",
                      tuple(dict.fromkeys(f.client_id for f in fills if f.client_id)))
            for symbol, fills in by_symbol.items()]


# --- the agent's own machinery ----------------------------------------------------------
def undelivered_alerts(waiting: Sequence[WaitingAlert], before: datetime) -> list[Violation]:
    """The outbox drains: no alert has been waiting since before `before`."""
    stuck = [a for a in waiting if a.since < before]
    if not stuck:
        return []
    oldest = min(stuck, key=lambda a: a.since)
    return [Violation(InvariantKind.ALERT_BACKLOG, "", f"{len(stuck)} alerts undelivered, the "
                      f"oldest {oldest.name} (id {oldest.id}) waiting since "
                      f"{oldest.since:%H:%M:%S} UTC; alert ids "
                      + ", ".join(str(a.id) for a in stuck[:10]))]


def stuck_intents(intents: Sequence[Intent], now: datetime,
                  window: timedelta) -> list[Violation]:
    """An order sent whose answer was lost is found by its client id within recvWindow
    (the exchange refuses it later): SENT for longer than `window` is stuck."""
    stuck = [i for i in intents if i.status is IntentStatus.SENT
             and now - (i.sent_at or i.created_at) > window]
    by_symbol: dict[str, list[Intent]] = defaultdict(list)
    for intent in stuck:
        by_symbol[intent.symbol].append(intent)
    return [Violation(InvariantKind.STUCK_INTENT, symbol, "sent, fate unknown for more than "
                      f"{window.total_seconds():.0f} s: " + ", ".join(
                          f"{i.client_id} ({i.type.value} {i.side.value} {plain(i.quantity)}, "
                          f"sent {(i.sent_at or i.created_at):%H:%M:%S})" for i in sent),
                      tuple(i.client_id for i in sent))
            for symbol, sent in by_symbol.items()]


def position_mismatch(symbol: str, record: Position | None,
                      held: ExchangePosition) -> list[Violation]:
    """The database's open position on `symbol` is the exchange's: same side, same size.
    A record being entered is not compared (its entry may fill any moment)."""
    if record is not None and record.state is PositionState.ENTERING:
        return []
    ours = record if record is not None and record.state.open else None
    if ours is None and held.quantity == 0:
        return []
    if ours is not None and held.side is ours.side and held.size == ours.quantity:
        return []
    recorded = f"{ours.side.label} {plain(ours.quantity)} ({ours.key})" if ours else "flat"
    return [Violation(InvariantKind.POSITION_MISMATCH, symbol, f"database {recorded}, "
                      f"exchange {_holding(held) if held.quantity else 'flat'}")]


def silent_streams(states: Mapping[str, str]) -> list[Violation]:
    """Every push stream is up ("down" counts; "polling" is a stream switched off)."""
    down = sorted(name for name, state in states.items() if state == "down")
    if not down:
        return []
    words = [STREAM_WORDS.get(name, name) for name in down]
    about = f"{' and '.join(words)} stream{'s' if len(words) > 1 else ''}"
    return [Violation(InvariantKind.STREAM_SILENT, "", f"{', '.join(down)} stream down: "
                      "the agent polls over REST meanwhile", about=about)]


# --- all-clears ---------------------------------------------------------------------------
STREAM_WORDS = {"user_data": "user-data", "market": "market-data", "book_ticker": "book-ticker"}

# kind -> (what is true again, what was wrong before "since HH:MM:SS UTC"); said in words,
# never with the kind's name: on a phone "NO_STOP holds again" reads as "no stop again".
_TRUE_AGAIN: dict[InvariantKind, tuple[str, str]] = {
    InvariantKind.NO_STOP: ("a stop-loss covers the position again", "it had none"),
    InvariantKind.EXTRA_STOP: ("a single stop-loss is live on the position again",
                               "it had more than one"),
    InvariantKind.TAKE_PROFIT: ("the take-profits close exactly the position's size again",
                                "they did not"),
    InvariantKind.FLAT_ORDERS: ("no order of the agent's is left open on the flat symbol",
                                "leftovers were open"),
    InvariantKind.DUPLICATE_ID: ("no client id of the agent's is on two exchange orders any "
                                 "more", "one was"),
    InvariantKind.UNJOURNALED_FILL: ("every exchange fill of the position is in the database "
                                     "again", "fills were missing"),
    InvariantKind.ALERT_BACKLOG: ("alerts are delivered again", "they were held up"),
    InvariantKind.STUCK_INTENT: ("every order sent has a known outcome again",
                                 "an order's outcome was unknown"),
    InvariantKind.POSITION_MISMATCH: ("the database's position is the exchange's again",
                                      "they differed"),
    InvariantKind.STREAM_SILENT: ("the push streams are up again", "down"),
}
# Kinds checked only while a position is open: they also end with the position.
_WHILE_OPEN = {
    InvariantKind.NO_STOP: "the position is closed: it needs no stop-loss any more",
    InvariantKind.EXTRA_STOP: "the position is closed",
    InvariantKind.TAKE_PROFIT: "the position is closed",
    InvariantKind.DUPLICATE_ID: "the position is closed: its fills are no longer checked",
    InvariantKind.UNJOURNALED_FILL: "the position is closed: its fills are no longer checked",
}


def all_clear_text(violation: Violation, since: datetime, position_open: bool) -> str:
    """What is true now that `violation` is no longer seen (broken since `since`), e.g.
    "a stop-loss covers the position again (it had none since 06:09:58 UTC)", or "the
    position is closed: ..." when it ended with the position (`position_open`: whether
    the exchange holds a position on its symbol now)."""
    kind = violation.kind
    now_true, before = _TRUE_AGAIN[kind]
    if kind in _WHILE_OPEN and not position_open:
        now_true = _WHILE_OPEN[kind]
    elif kind is InvariantKind.FLAT_ORDERS and position_open:
        now_true = "a position is open again: its orders are no leftovers"
    elif kind is InvariantKind.STREAM_SILENT and violation.about:
        plural = violation.about.endswith("streams")
        now_true = f"the {violation.about} {'are' if plural else 'is'} speaking again"
    return f"{now_true} ({before} since {since:%H:%M:%S} UTC)"
