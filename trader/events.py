"""What happens to a position (events, the input of `trader.lifecycle.step`) and what the
agent does about it (actions, its output). Plain frozen values: the state machine is pure,
the engine alone turns actions into exchange calls and their results back into events.

Events come from three places: observing the exchange (trader/observe.py, from the order
tracker and the exchange's position), the results of the engine's own actions, and the
operator or the clock (a close request, a tick).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trader.alerts import Alert
from trader.domain import CloseReason, OrderRole
from trader.fast_init import fast_init
from trader.management import DEFAULT_TRAILING_DISTANCE, TrailingDistance
from trader.strategy.regime import Regime
from trader.symbol_rules import SymbolRules

# --- events -------------------------------------------------------------------------------


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class EntryFilled:
    """The entry filled (`complete`) or partly filled so far: the exchange holds `quantity`."""
    quantity: Decimal
    price: Decimal
    complete: bool = True


@dataclass(frozen=True, slots=True)
class EntryFailed:
    """The entry order ended without any fill (rejected, expired, never placed). `late`:
    known only on a later tick (its answer was lost, or it was accepted and then ended
    unfilled): no reply to a command said it, so an alert does (ENTRY_NOT_FILLED).
    `answered`: a command's reply says it after all (a /close that settled the entry):
    the alert is kept for /alerts, not sent again."""
    reason: str
    late: bool = False
    answered: bool = False


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class LegPlaced:
    """The exchange accepted a protective order of ours."""
    role: OrderRole
    client_id: str
    trigger_price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class LegPlacementUnknown:
    """A placement was sent and its answer lost (timeout, 5xx): probe, never resend."""
    role: OrderRole
    client_id: str


@dataclass(frozen=True, slots=True)
class LegRejected:
    """The exchange refused a placement (or never received it). `level_passed`: the
    trigger price is already behind the market (-2021 after its retry). `retry_after`:
    seconds the exchange holds requests back (429/418 Retry-After, or the adapter's open
    circuit): the next try waits for it. `filter_refused`: a filter failure that re-reading
    the symbol's rules did not cure (trader/exchange/errors.py `Verdict.filter_refused`):
    the same order would be refused again. `allowed_trigger`: with `filter_refused`, the
    nearest trigger PRICE_FILTER allows when the refused one is past its minPrice / maxPrice
    (None otherwise): a first placement is planned again there. `covered_already`: Binance
    refused it because a closePosition stop or take-profit in that direction rests already
    (-4130, `Verdict.closing_order_exists`): the position is covered by it. `never_placed`:
    no refusal, the placement's answer was lost and its probe found it never landed
    (recvWindow + grace passed, not on the exchange): no reason to wait before the next.
    `min_qty`: with `filter_refused`, LOT_SIZE's minQty (the rules re-read) when the order's
    quantity is below it: the size is refused, at any level (None otherwise)."""
    role: OrderRole
    client_id: str
    reason: str
    level_passed: bool = False
    retry_after: float | None = None
    filter_refused: bool = False
    covered_already: bool = False
    allowed_trigger: Decimal | None = None
    never_placed: bool = False
    min_qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class LegSeen:
    """A protective order is live on the exchange (ours, or one placed by hand). `replaces`:
    the order of ours it takes over from (a stop moved by hand: ours cancelled, theirs placed;
    a later order of ours the record missed: trader/observe.py `_newer_of_ours`)."""
    role: OrderRole
    client_id: str
    trigger_price: Decimal
    quantity: Decimal                # what it still closes
    replaces: str | None = None


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class LegGone:
    """A protective order is not live any more. `confirmed`: the exchange reported a final
    status (CANCELED, EXPIRED, REJECTED); otherwise it is only absent from the open orders.
    `reason`: the exchange's own words for why it ended it (`Order.reason`), if it gave any."""
    role: OrderRole
    client_id: str
    confirmed: bool
    status: str = ""
    reason: str = ""


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class LegFilled:
    """A protective order filled `filled` (in part: the position got smaller)."""
    role: OrderRole
    client_id: str
    filled: Decimal
    complete: bool


@dataclass(frozen=True, slots=True)
class PositionSizeChanged:
    """The exchange's position is `quantity` now (unsigned, same side); `cause` for people;
    `by_exchange`: Binance's own order made it smaller (a partial liquidation, an ADL).
    `heard`: told by the user-data stream inside a Retry-After (an IP ban), when nothing
    may be sent: the record takes the size, its legs follow on the first tick after."""
    quantity: Decimal
    entry_price: Decimal
    cause: str = ""
    by_exchange: CloseReason | None = None
    heard: bool = False


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class PositionGone:
    """The exchange holds no position (or the opposite side): the position is over.
    `reason` when the observation knows it (a leg filled, the exchange closed it).
    `entry`: the entry is known to have filled (its fill), so a flat exchange while ENTERING
    means the position was opened and closed already (found after a restart), not "the entry
    has not filled yet"."""
    reason: CloseReason | None = None
    entry: EntryFilled | None = None


@fast_init          # one per close
@dataclass(frozen=True, slots=True)
class CloseRequested:
    """Close at market: the operator, the time exit, an opposite signal, a passed level.
    `quotes_first`: the entry's maker quote still works (the operator's /close of a
    position filled in part): CLOSING with no order yet, so that the quote is given up
    (cancelled and verified) before the close is sent, by the Tick that follows."""
    reason: CloseReason
    quotes_first: bool = False


@dataclass(frozen=True, slots=True)
class StopMoveRequested:
    """The operator's /sl: the stop-loss to `trigger_price` (on the tick, on the stop's
    side of the mark: trader/control_stop.py checks both). Placed new-first, the old stop
    cancelled once the new one is live (trader/protection.py). `by_operator`: the
    operator's own level (/sl SYMBOL PRICE), which the regime rule then leaves; False: the
    agent's level handed back (/sl SYMBOL auto), which the rule follows again."""
    trigger_price: Decimal
    by_operator: bool = True


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class FlattenResult:
    """After a market close: what the exchange still holds on our side. `in_flight`: the
    client id of a close of ours whose outcome is not known yet (its answer was lost and it
    may still land): no other close is sent until it is (trader/market_exit.py).
    `not_sent`: a partial take-profit refused before sending, as its intent could not be
    saved (trader/executor.py JOURNAL_REQUIRED): nothing was closed. `unread`: the close
    was taken, but the position could not be read back after it (the exchange did not
    answer): `remaining` is the size before it; a later tick's view says what is left.
    `refused_for_now`: Binance refused the close for a reason waiting cures (its label:
    "503 Service Unavailable"): nothing executed, sent again on trader/close_retry.py's
    backoff, never counted towards the give-up."""
    remaining: Decimal
    in_flight: str | None = None
    not_sent: bool = False
    unread: bool = False
    refused_for_now: str | None = None


@fast_init          # one per in-position tick
@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed and the price moved: management, retries and debounces run on it.
    `regime`: the symbol's volatility regime now, when known (its legs follow it:
    trader/regime_adjust.py)."""
    now: datetime
    mark: Decimal | None
    rules: SymbolRules
    regime: Regime | None = None
    atr: Decimal | None = None        # ATR(14) now, for an ATR trailing distance (management)


Event = (EntryFilled | EntryFailed | LegPlaced | LegPlacementUnknown | LegRejected | LegSeen
         | LegGone | LegFilled | PositionSizeChanged | PositionGone | CloseRequested
         | StopMoveRequested | FlattenResult | Tick)

# --- actions ------------------------------------------------------------------------------


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class PlaceLeg:
    """Place a reduce-only protective order (new-first: any older one stays until it is live)."""
    role: OrderRole
    client_id: str
    trigger_price: Decimal
    quantity: Decimal


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one of our orders, then read it back (a fill may have raced the cancel)."""
    client_id: str
    role: OrderRole


@dataclass(frozen=True, slots=True)
class ProbeOrder:
    """Ask the exchange for one order by client id (absent, or an answer that was lost)."""
    client_id: str
    role: OrderRole


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class Flatten:
    """Market reduce-only close of `quantity`, then read the position back. `attempt`: the
    how-manyth close of this one request (2, 3: the one before was refused or left some
    open); a later one is sent a short pause after the one before it
    (trader/close_retry.py `close_retry_pause`). `told`: what the chat hears once the
    order is sent (a partial take-profit's news), never when it is not (trader/interpreter.py)."""
    reason: CloseReason
    quantity: Decimal
    client_id: str
    role: OrderRole = OrderRole.FLATTEN
    attempt: int = 1
    told: Alert | None = None


@fast_init          # one or more per order
@dataclass(frozen=True, slots=True)
class Finalize:
    """Record the close: fills, PnL, reason (refined from the fills), cooldown, alert."""
    reason: CloseReason


Action = PlaceLeg | CancelOrder | ProbeOrder | Flatten | Finalize | Alert


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings `step` needs (seconds and counts from trader/config.py)."""
    debounce_seconds: float = 60.0          # an ambiguous absence is repaired after this long
    debounce_cycles: int = 3                # ... and this many observations
    sl_missing_cycles: int = 2              # SL_MISSING after more cycles than this
    # Refused placements: capped at 25 s so that, with a 2 s tick, a stop is back within 30 s
    # of margin returning whenever it returns.
    retry_schedule: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 25.0)
    flatten_attempts: int = 3
    breakeven_attempts: int = 5
    taker_fee: Decimal = Decimal("0.0005")
    partial_fraction: Decimal = Decimal("0.5")
    trailing_distance: TrailingDistance = DEFAULT_TRAILING_DISTANCE  # TRADEBOT_TRAILING_DISTANCE
    # A protective order the mark has passed this long, its position still open, triggered
    # without executing (TRADEBOT_TRIGGER_GRACE_SECONDS; trader/stuck_trigger.py says why 10)
    trigger_grace_seconds: float = 10.0
    # A placement whose answer was lost is known never placed this long after its send at
    # the latest (recvWindow + trader/executor.py PROBE_GRACE): what the operator is told
    # the agent waits, at most, once every stop placement is unanswered (stop_backup.py).
    placement_expiry_seconds: float = 15.0
