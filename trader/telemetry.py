"""Per-symbol telemetry counters: logged by housekeeping (a `telemetry symbol=...
sl_attached=...` line for a symbol whose counters or gauges changed since its last line, or
once an hour of engine time as a heartbeat) and handed to /status's view
(`StatusView.counters`; the Telegram reply shows the regime gauge).

    counters = Counters()
    counters.incr("BTCUSDT", "sl_attached")
    counters.set("BTCUSDT", "regime_state", "HIGH")
    counters.snapshot()  # {"BTCUSDT": {"sl_attached": 1, "regime_state": "HIGH", ...}}

Only the names in `COUNTER_NAMES` and `GAUGE_NAMES` exist, so a typo fails loudly
instead of creating a counter nobody reads. The protection counters move in
`ProtectionTelemetry`, which the interpreter shows every step it takes.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from loguru import logger

from trader.domain import OrderRole
from trader.events import EntryFilled, Event, LegFilled, LegGone, Tick
from trader.position import Leg, LegOrder, LegStatus, Position, PositionState
from trader.protection import gone_how

COUNTER_NAMES = (
    "tp_attached",               # take-profit placements (TP1 too) the exchange acknowledged
    "sl_attached",               # stop-loss placements the exchange acknowledged
    "reattach_attempts",         # placements for a leg whose order vanished (and retries)
    "reattach_success",          # such re-attaches acknowledged
    "partial_fills_count",       # an entry, stop-loss or take-profit of ours part-filled
)
GAUGE_NAMES = (
    "regime_state",              # NORMAL / HIGH / EXTREME / LOW
    "risk_fraction_active",      # e.g. "0.025"
    "circuit_breaker_active",    # 1 while any breaker blocks the symbol, else 0
)
GAUGE_DEFAULTS: dict[str, int | str] = {
    "regime_state": "",
    "risk_fraction_active": "",
    "circuit_breaker_active": 0,
}

_NAMES = frozenset(COUNTER_NAMES + GAUGE_NAMES)
Value = int | str
# Built once: `logger.opt` makes a new logger per call, and `log` is asked every
# TELEMETRY_EVERY of engine time (every candle of a 5-minute backtest).
_LAZY_LOGGER = logger.opt(lazy=True)
# A symbol whose counters and gauges stay put is logged this often (engine time): the
# housekeeping asks every 5 minutes, and a replay runs those in a blink.
HEARTBEAT = timedelta(hours=1)


class Counters:
    """Counters and gauges per symbol (in memory; the engine logs and shows them)."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[str, Value]] = {}
        self._logged: dict[str, tuple[datetime, dict[str, Value]]] = {}   # when, what
        # What `log` needs to look at: the symbols whose row may differ from its last line
        # (a new row, a value changed since; every change goes through `_row`, `incr` or
        # `set`), and when the first heartbeat falls due (None: no line yet).
        self._changed: set[str] = set()
        self._heartbeat_at: datetime | None = None

    def _row(self, symbol: str) -> dict[str, Value]:
        row = self._by_symbol.get(symbol)
        if row is None:
            counters: dict[str, Value] = {name: 0 for name in COUNTER_NAMES}
            row = counters | dict(GAUGE_DEFAULTS)
            self._by_symbol[symbol] = row
            self._changed.add(symbol)
        return row

    def incr(self, symbol: str, name: str, by: int = 1) -> int:
        """Add `by` to a counter and return its new value."""
        if name not in COUNTER_NAMES:
            raise KeyError(f"unknown counter {name!r}; known: {', '.join(COUNTER_NAMES)}")
        row = self._row(symbol)
        value = int(row[name]) + by
        row[name] = value
        self._changed.add(symbol)
        return value

    def set(self, symbol: str, name: str, value: int | str | bool | Decimal) -> None:
        """Set a gauge (or overwrite a counter). Decimals are kept as exact text."""
        if name not in _NAMES:
            raise KeyError(f"unknown telemetry name {name!r}")
        if type(value) is str:          # the usual gauge (the regime, every tick)
            stored: Value = value
        elif isinstance(value, bool):
            stored = int(value)
        elif isinstance(value, Decimal):
            stored = str(value)
        else:
            stored = value
        row = self._by_symbol.get(symbol)   # `_row`, inline (the regime gauge, every tick)
        if row is None:
            row = self._row(symbol)
        if row[name] != stored:         # the regime gauge, every tick: mostly the same
            row[name] = stored
            self._changed.add(symbol)

    def get(self, symbol: str, name: str) -> Value:
        return self._row(symbol)[name]

    def snapshot(self) -> dict[str, dict[str, Value]]:
        """A copy of every symbol's counters (safe to hand to /status)."""
        return {symbol: dict(row) for symbol, row in sorted(self._by_symbol.items())}

    def log(self, now: datetime) -> None:
        """One INFO line per symbol with news, every counter and gauge as key=value: its
        first line, a change since its last line, or `HEARTBEAT` of engine time (`now`)
        since its last line. The others say nothing (nothing changed and no heartbeat due:
        nothing is looked at)."""
        heartbeat_at = self._heartbeat_at
        if not self._changed and heartbeat_at is not None and now < heartbeat_at:
            return
        for symbol, row in sorted(self._by_symbol.items()):
            last = self._logged.get(symbol)
            if last is not None and now - last[0] < HEARTBEAT and last[1] == row:
                continue
            self._logged[symbol] = (now, dict(row))
            # Lazy: a backtest logs at ERROR and would format these lines for nothing.
            _LAZY_LOGGER.info("telemetry symbol={} {}", lambda symbol=symbol: symbol,
                              lambda row=row: " ".join(f"{name}={value}"
                                                       for name, value in row.items()))
        self._changed.clear()
        self._heartbeat_at = min(when for when, _ in self._logged.values()) + HEARTBEAT \
            if self._logged else None


STOP_LOSS, CLOSED = OrderRole.STOP_LOSS, PositionState.CLOSED
Episode = tuple[str, str, OrderRole]     # symbol, position key, leg role
PARTIAL_FILLS = (LegFilled, EntryFilled)    # events that may report a partial fill


class ProtectionTelemetry:
    """Counts what each step did to a position's protection (`stepped(before, event,
    after)`, called by the interpreter for every step it takes):

    - `sl_attached` / `tp_attached`: a placement of the stop-loss / a take-profit (TP1
      too) acknowledged by the exchange: the first one and every replacement (a move, a
      new size);
    - `reattach_attempts`: a placement for a leg whose order vanished (the exchange
      confirmed it gone, or it stayed missing past the debounce), and every retry of it
      after a refusal; `reattach_success`: the one of them the exchange acknowledged;
    - `partial_fills_count`: an entry seen filled in part (the rest follows as the
      position's size), a stop-loss or a take-profit of ours filled in part.

    A take-profit that vanished is logged here at WARNING: it is replaced at once and
    raises no alert (a stop-loss that vanishes raises SL_MISSING: trader/protection.py).
    The re-attach episodes in progress are kept in memory only (a restart forgets them).
    """

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self._reattaching: set[Episode] = set()

    def stepped(self, before: Position, event: Event, after: Position) -> None:
        """One step of the state machine: `event` took `before` to `after` (the same object
        when it changed nothing: most ticks, decided without a look at the legs)."""
        if type(event) in PARTIAL_FILLS and not event.complete:  # type: ignore[union-attr]
            self._partly_filled(before, event, after)  # type: ignore[arg-type]
        if after is before:
            return
        if after.state is CLOSED:
            ended = (after.symbol, after.key)
            self._reattaching = {e for e in self._reattaching if e[:2] != ended}
            return
        # Every leg the very one it was (most steps that change a record: the best price,
        # the state, the client id sequence): the loop below would find no leg changed.
        if after.stop is before.stop and after.take_profit is before.take_profit \
                and after.take_profit_1 is before.take_profit_1:
            return
        for leg in after.legs:
            was = before.leg(leg.role)
            if leg is not was:
                self._leg_changed(after, was, leg, event)

    def _partly_filled(self, before: Position, event: LegFilled | EntryFilled,
                       after: Position) -> None:
        """A protective order's partial fill is reported once, even when its step changes
        nothing (the order was already replaced for the smaller size); an entry's when it
        is first seen, or when more of it filled."""
        if isinstance(event, LegFilled) or before.state is PositionState.ENTERING \
                or after.quantity > before.quantity:
            self.counters.incr(after.symbol, "partial_fills_count")

    def _leg_changed(self, position: Position, was: Leg, leg: Leg, event: Event) -> None:
        symbol, episode = position.symbol, (position.symbol, position.key, leg.role)
        order = leg.order
        if was.pending is not None and order is not None and order.client_id == was.pending:
            # acknowledged (the same step may start the next placement: a new size)
            self.counters.incr(symbol, "sl_attached" if leg.role is STOP_LOSS else "tp_attached")
            if episode in self._reattaching:
                self._reattaching.discard(episode)
                self.counters.incr(symbol, "reattach_success")
        gone = was.order
        if gone is not None and order is None and _vanished(gone, event):
            self._reattaching.add(episode)
            if leg.role is not STOP_LOSS:
                status = event.status if isinstance(event, LegGone) else ""
                how = "missing past the debounce" if not status else gone_how(status)
                logger.warning("take-profit {}: replacing it, no alert (the stop-loss stays) "
                               "symbol={} client_id={}", how, symbol, gone.client_id)
        if leg.pending is not None and leg.pending != was.pending \
                and episode in self._reattaching:
            self.counters.incr(symbol, "reattach_attempts")


def _vanished(gone: LegOrder, event: Event) -> bool:
    """The leg's order was dropped because it is gone: the exchange confirmed it (LegGone
    for that order), or a tick found it missing past the debounce."""
    if isinstance(event, LegGone):
        return event.client_id == gone.client_id
    return isinstance(event, Tick) and gone.status is LegStatus.MISSING
