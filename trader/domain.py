"""Typed values of the trading domain: candles, signals, intents, orders, fills, positions.

Everything that crosses a module boundary is one of these frozen values. Money and
quantities are `Decimal`; times are timezone-aware UTC `datetime`s.

Client order ids are derived from the intent and encode the role, so the engine can find
its own orders on the exchange after a crash or on an empty disk:

    tb-<SYMBOL>-<position key>-<role><seq>      e.g.  tb-BTCUSDT-lzx81c0-sl2

`position key` is the entry candle's open time in base 36 (deterministic: the same signal
on the same candle yields the same id), `role` is one of OrderRole, `seq` counts
replacements of that role for the position (the 2nd stop-loss is `sl2`).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from trader.fast_init import fast_init

CLIENT_ID_PREFIX = "tb"
ZERO = Decimal(0)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> "Side":
        return _SELL if self is _BUY else _BUY

    @property
    def sign(self) -> int:
        return 1 if self is _BUY else -1

    @property
    def label(self) -> str:
        return "LONG" if self is _BUY else "SHORT"


class OrderRole(StrEnum):
    ENTRY = "en"
    STOP_LOSS = "sl"
    TAKE_PROFIT = "tp"  # the take-profit at the strategy's target (TP2 in the two-TP plan)
    TAKE_PROFIT_1 = "t1"  # the first take-profit of the two-TP plan (part of the position)
    PARTIAL_TP = "pt"   # market reduce-only partial take-profit
    FLATTEN = "fl"      # market reduce-only close (time exit, /close, emergency, rebalance)

    @property
    def protective(self) -> bool:
        return self in _PROTECTIVE_ROLES


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    OTHER = "OTHER"    # a type this agent never places (LIQUIDATION, TRAILING_STOP_MARKET, ...)

    @property
    def conditional(self) -> bool:
        """Conditional types live in Binance's Algo Order API (keyed by clientAlgoId; on a
        server without it, on /fapi/v1/order: trader/exchange/binance_algo_presence.py)."""
        return self in _CONDITIONAL_TYPES


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_STATUSES

    @property
    def live(self) -> bool:
        return self not in _TERMINAL_STATUSES


class IntentStatus(StrEnum):
    PENDING = "PENDING"   # recorded, not yet sent
    SENT = "SENT"         # request sent, answer not yet known (UNKNOWN outcome stays here)
    ACKED = "ACKED"       # exchange accepted, order live
    FILLED = "FILLED"
    FAILED = "FAILED"     # exchange rejected; nothing live
    EXPIRED = "EXPIRED"   # cancelled / expired / cleaned up

    @property
    def resolved(self) -> bool:
        return self in _RESOLVED_STATUSES


class CloseReason(StrEnum):
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    TRAILING_STOP = "TRAILING_STOP"
    BREAKEVEN_STOP = "BREAKEVEN_STOP"
    TIME_EXIT = "TIME_EXIT"
    SIGNAL_CLOSE = "SIGNAL_CLOSE"
    MANUAL = "MANUAL"              # closed by hand on the exchange
    COMMAND = "COMMAND"            # /close from Telegram or the CLI
    EMERGENCY = "EMERGENCY"        # /shutdown flatten
    LIQUIDATION = "LIQUIDATION"    # closed by the exchange's liquidation engine
    ADL = "ADL"                    # auto-deleveraged (a counterparty was liquidated)
    SETTLEMENT = "SETTLEMENT"      # settled by the exchange (delisting or delivery)
    UNKNOWN = "UNKNOWN"

    @property
    def exchange_initiated(self) -> bool:
        return self in _EXCHANGE_REASONS


# The enums' properties run for every order and leg on every tick: a member read through its
# class (`Side.BUY`) costs ~0.1 us (enum.property), a module name does not, and a frozenset
# answers membership without building a tuple of members on each call.
_BUY, _SELL = Side.BUY, Side.SELL
_LIMIT, _ENTRY = OrderType.LIMIT, OrderRole.ENTRY     # Intent.request: every order
_PROTECTIVE_ROLES = frozenset({OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1})
_CONDITIONAL_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
# A member looked up by its value through the enum's call (`OrderStatus("FILLED")`) costs
# ~4,500 instructions (EnumType.__call__, Enum.__new__); a dict ~200. For the texts read per
# order (a client id's role, a stored order's status); a text that is no member's value is
# not in them (the enum's call then says why).
ROLES_BY_VALUE = {role.value: role for role in OrderRole}
STATUSES_BY_VALUE = {status.value: status for status in OrderStatus}
_TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED,
                                OrderStatus.REJECTED})
_RESOLVED_STATUSES = frozenset({IntentStatus.FILLED, IntentStatus.FAILED, IntentStatus.EXPIRED})
_EXCHANGE_REASONS = frozenset({CloseReason.LIQUIDATION, CloseReason.ADL, CloseReason.SETTLEMENT})


# Binance's special client order ids for orders the exchange itself places (USD-M user data
# stream, "Event: Order Update": https://developers.binance.com/docs/derivatives/
# usds-margined-futures/user-data-streams/Event-Order-Update):
#   starts with "autoclose-": liquidation order; "adl_autoclose": ADL auto close order;
#   "settlement_autoclose-": settlement order for delisting or delivery.
_EXCHANGE_CLIENT_IDS = (("settlement_autoclose-", CloseReason.SETTLEMENT),
                        ("adl_autoclose", CloseReason.ADL),
                        ("autoclose-", CloseReason.LIQUIDATION))


# What the operator does after a liquidation, whole or partial: it came from the position's
# own margin ("liquidated due to insufficient margin balance", the page above).
LIQUIDATION_ADVICE = "Check the account's margin and leverage before trading on."


def exchange_close_reason(client_id: str) -> CloseReason | None:
    """The close reason an exchange-placed order's client id names, or None for any other id."""
    for prefix, reason in _EXCHANGE_CLIENT_IDS:
        if client_id.startswith(prefix):
            return reason
    return None


def utc(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@fast_init
@dataclass(frozen=True, slots=True)
class Candle:
    symbol: str
    open_time: datetime
    interval: timedelta
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    closed: bool = True

    @property
    def close_time(self) -> datetime:
        return self.open_time + self.interval


@fast_init          # one per signal
@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants for one symbol. Percentages are fractions (0.004 = 0.4 %)."""
    side: Side
    confidence: float
    tp_pct: Decimal
    sl_pct: Decimal
    # None: no opinion, TRADEBOT_TIME_IN_TRADE_MINUTES decides; a strategy may only shorten
    # it (trader.entry.time_limit_for)
    time_limit: timedelta | None = None
    # The pause after its close: TRADEBOT_COOLDOWN_MINUTES, or longer if this asks for more
    # (trader.entry.entering_position); zero: no opinion
    cooldown: timedelta = timedelta(0)
    trail_activation: Decimal = Decimal("0.006")
    reason: str = ""


def plain(value: Decimal) -> str:
    """A decimal as Binance wants it: plain digits, no exponent, no trailing zeros. Prices and
    quantities are rounded where they are planned; this only writes them."""
    return format(value.normalize(), "f")


@fast_init
@dataclass(frozen=True, slots=True)
class ClientId:
    symbol: str
    position_key: str
    role: OrderRole
    seq: int

    def __str__(self) -> str:
        # f"{role}" is its value (a StrEnum formats as its str), without `.value`'s cost
        return f"{CLIENT_ID_PREFIX}-{self.symbol}-{self.position_key}-{self.role}{self.seq}"

    @staticmethod
    def parse(text: str) -> "ClientId | None":
        """Parse one of our client ids; None for anybody else's."""
        return _parse_client_id(text)


# Every tick asks again about the same few ids (a leg's order: ours?, an order's role):
# a ClientId is a frozen value, so one parse per id is shared.
@lru_cache(maxsize=4096)
def _parse_client_id(text: str) -> ClientId | None:
    parts = text.split("-")
    if len(parts) != 4 or parts[0] != CLIENT_ID_PREFIX or len(parts[3]) < 3:
        return None
    role_text, seq_text = parts[3][:2], parts[3][2:]
    role = ROLES_BY_VALUE.get(role_text)
    if role is None:
        return None
    try:
        parsed = ClientId(parts[1], parts[2], role, int(seq_text))
    except ValueError:
        return None
    # int() also accepts "+1", " 1", "01" and non-ASCII digits: only the exact text
    # this agent would have produced is ours.
    return parsed if parts[1] and parts[2] and str(parsed) == text else None


def position_key(opened_at: datetime) -> str:
    """A short deterministic key for a position: its entry candle time in base 36."""
    number = to_ms(opened_at) // 1000
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
    return out or "0"


def key_time(key: str) -> datetime | None:
    """The time a position key names (`position_key`'s inverse): the entry candle's, or for
    an adopted position's key ("a" + `position_key`) the adoption's; None if unreadable."""
    try:
        return utc(int(key.removeprefix("a"), 36) * 1000)
    except (ValueError, OverflowError, OSError):
        return None


@fast_init
@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order the engine wants on the exchange. `client_id` comes from the intent."""
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    client_id: str
    role: OrderRole
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    post_only: bool = False     # LIMIT: rest as maker or be refused (Binance timeInForce GTX)


@fast_init
@dataclass(frozen=True, slots=True)
class Order:
    """An order as the exchange reports it (plain or algo/conditional)."""
    symbol: str
    client_id: str
    side: Side
    type: OrderType
    status: OrderStatus
    quantity: Decimal
    filled_qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    exchange_id: str = ""
    updated_at: datetime | None = None
    # The exchange's own words for why it ended the order (Binance: ALGO_UPDATE "rm",
    # CONDITIONAL_ORDER_TRIGGER_REJECT "r"), "" when it gave none: the operator's alert
    # of a stop the exchange rejected says it (trader/protection.py `vanished`).
    reason: str = ""

    @property
    def role(self) -> OrderRole | None:
        parsed = ClientId.parse(self.client_id)
        return parsed.role if parsed else None

    def closes(self, position_quantity: Decimal) -> Decimal:
        """What this order still closes of a position of `position_quantity`: the one rule
        for every read-back (observation, a placement's answer or verify, a probe,
        reconciliation, the invariants). A closePosition order has no quantity of its own
        ("Cannot be sent with closePosition=true", New Algo Order: it reads back as 0) and
        closes whatever is open when it triggers."""
        if self.close_position:
            return position_quantity
        return self.quantity - self.filled_qty


# Every symbol traded is quoted and settled in USDT (config.py refuses others): its PnL,
# and a fee charged in it, need no conversion.
SETTLEMENT_ASSET = "USDT"


@fast_init
@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    symbol: str
    client_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    time: datetime
    maker: bool = False
    order_id: str = ""       # the exchange's order id (userTrades carry it, not the client id)
    # The asset `fee` is counted in: Binance's commission asset (ORDER_TRADE_UPDATE "N",
    # userTrades "commissionAsset"), BNB when the account pays its fees in BNB ("feeBurn");
    # trader/fee_value.py values it in USDT at the close.
    fee_asset: str = SETTLEMENT_ASSET


@fast_init
@dataclass(frozen=True, slots=True)
class FeeInKind:
    """A closed trade's commission charged in an asset other than USDT (BNB with "BNB
    burn" on), over its own part of the fills, and what it was worth in USDT at the
    close: None when its price could not be read (trader/fee_value.py), until the close
    read-back values it at its price then (trader/close_readback.py)."""
    asset: str
    amount: Decimal
    usdt: Decimal | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class ExchangePosition:
    """The exchange's view of a symbol's one-way position. quantity is signed.
    `updated_at`: when the exchange last changed it, if a REST read says (Binance's
    positionRisk "updateTime"); compared with stream events only, never in equality.
    `leverage` 0: not known (the Binance adapter could not read it); the agent's record of
    the position keeps its own then."""
    symbol: str
    quantity: Decimal
    entry_price: Decimal = ZERO
    mark_price: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    leverage: int = 1
    updated_at: datetime | None = field(default=None, compare=False)

    @property
    def side(self) -> Side | None:
        if self.quantity > ZERO:
            return _BUY
        if self.quantity < ZERO:
            return _SELL
        return None

    @property
    def size(self) -> Decimal:
        return abs(self.quantity)


@fast_init
@dataclass(frozen=True, slots=True)
class Balance:
    wallet: Decimal          # cash incl. realised PnL, fees and funding
    unrealized_pnl: Decimal
    available: Decimal       # free margin
    # The account's open positions on every symbol, as the same read showed them (Binance's
    # GET /fapi/v2/account lists them with the totals); None when the read carries none (the
    # paper exchange, whose positions are all the agent's). Not compared.
    positions: tuple[ExchangePosition, ...] | None = field(default=None, compare=False)

    @property
    def equity(self) -> Decimal:
        return self.wallet + self.unrealized_pnl


@fast_init
@dataclass(frozen=True, slots=True)
class BookTicker:
    symbol: str
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread_pct(self) -> Decimal:
        mid = self.mid
        return (self.ask - self.bid) / mid if mid else ZERO


@fast_init
@dataclass(frozen=True, slots=True)
class Intent:
    """A write-ahead record of one exchange action, saved before the request is sent."""
    client_id: str
    symbol: str
    role: OrderRole
    side: Side
    type: OrderType
    quantity: Decimal
    position_key: str
    created_at: datetime
    status: IntentStatus = IntentStatus.PENDING
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    sent_at: datetime | None = None
    detail: str = ""

    def request(self) -> OrderRequest:
        # The agent's only LIMIT orders are its maker-first entries (trader/maker_entry.py):
        # post-only, so they never pay the taker fee. (Arguments by position, in
        # OrderRequest's field order: every order makes one, and keywords cost ~3,600
        # instructions more; tests/test_intent_copies.py checks it against the fields.)
        return OrderRequest(self.symbol, self.side, self.type, self.quantity, self.client_id,
                            self.role, self.price, self.trigger_price, self.reduce_only,
                            self.close_position, self.type is _LIMIT
                            and self.role is _ENTRY)

    def with_status(self, status: IntentStatus, detail: str = "",
                    sent_at: datetime | None = None) -> "Intent":
        """This intent with `status`, `detail` (empty: the one it has) and `sent_at` (None:
        the one it has). Every order copies its intent 2-3 times (SENT, its answer, its
        end): built by position, in the field order (tests/test_intent_copies.py checks
        it against `dataclasses.replace`), ~14,600 instructions where `evolve` with its
        keywords took ~22,800."""
        return Intent(self.client_id, self.symbol, self.role, self.side, self.type,
                      self.quantity, self.position_key, self.created_at, status, self.price,
                      self.trigger_price, self.reduce_only, self.close_position,
                      self.sent_at if sent_at is None else sent_at, detail or self.detail)
