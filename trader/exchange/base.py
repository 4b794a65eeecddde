"""The async protocol the engine talks to, whatever the exchange behind it.

Adapters raise `ExchangeError` with Binance's own error code and HTTP status (the paper
exchange raises the same codes as Binance would), or `UnknownOutcome` when a request was
sent and its result is unknown (timeout, dropped connection, 5xx). `errors.py` maps both
to outcomes; the engine never branches on raw codes.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from trader.domain import Balance, BookTicker, Candle, ExchangePosition, Fill, Order, OrderRequest
from trader.fast_init import fast_init
from trader.symbol_rules import SymbolRules


@fast_init
@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order changed state (stream ORDER_TRADE_UPDATE / ALGO_UPDATE, or the simulator).
    `child_order_id`: ALGO_UPDATE's "ai", the order id of the MARKET order a triggered algo
    order placed (binance_children.py), "" otherwise."""
    order: Order
    fill: Fill | None
    time: datetime
    child_order_id: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """Positions and/or balance changed (stream ACCOUNT_UPDATE, or the simulator): the
    positions it moved. It carries no Balance: Binance's event has the wallet but not the
    available margin, and nothing reads one off an event; the engine reads `balance()` after
    account events (trader/balance_keeper.py). (The simulator built one per fill, ~20,000
    instructions, that nothing read.)"""
    positions: list[ExchangePosition]
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class FundingApplied:
    symbol: str
    rate: Decimal
    amount: Decimal
    time: datetime


@dataclass(frozen=True, slots=True)
class MoneyMoved:
    """Money moved into (+) or out of (-) the account's USDT wallet that is no trading result:
    a deposit, withdrawal or transfer (Binance: ACCOUNT_UPDATE's "bc", "balance change except
    PnL and commission", of a reason other than a trade's, funding's or a liquidation's).
    `reason` is the exchange's word for it (DEPOSIT, ASSET_TRANSFER, ...)."""
    amount: Decimal
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class LeverageChanged:
    """A symbol's leverage was changed on the exchange (Binance: ACCOUNT_CONFIG_UPDATE with
    "ac", e.g. by hand in the app); `time` is the transaction time."""
    symbol: str
    leverage: int
    time: datetime


@dataclass(frozen=True, slots=True)
class AssetModeChanged:
    """The account's asset mode changed on the exchange (Binance: ACCOUNT_CONFIG_UPDATE with
    "ai": {"j": Multi-Assets mode}, e.g. switched in the app). Multi-Assets mode allows
    cross margin only; the agent risks each position on its own isolated margin, so it
    takes no new entry while it is on (trader/margin_watch.py)."""
    multi_assets: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class MarginTypeChanged:
    """A symbol's margin type as the exchange told it (Binance: a position row's "mt" of
    ACCOUNT_UPDATE; reason MARGIN_TYPE_CHANGE when it was switched, e.g. by hand). `held`:
    the row shows a position open."""
    symbol: str
    isolated: bool
    held: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class MarginCall:
    """The exchange warns that positions are close to liquidation (Binance: MARGIN_CALL):
    each position (signed quantity, mark, unrealized PnL) and its maintenance margin."""
    positions: list[ExchangePosition]
    maintenance: dict[str, Decimal]
    time: datetime


@dataclass(frozen=True, slots=True)
class TriggerRejected:
    """A conditional order (stop, take-profit) triggered and the matching engine rejected
    what it sent (Binance: CONDITIONAL_ORDER_TRIGGER_REJECT): the order `order_id` on
    `symbol` is over; `reason` is the exchange's own words."""
    symbol: str
    order_id: str
    reason: str
    time: datetime


ExchangeEvent = (OrderUpdate | AccountUpdate | FundingApplied | LeverageChanged | MarginCall
                 | TriggerRejected | AssetModeChanged | MarginTypeChanged | MoneyMoved)


@dataclass(frozen=True, slots=True)
class FundingIncome:
    """One funding payment as the exchange's ledger keeps it (Binance: a FUNDING_FEE row
    of GET /fapi/v1/income), read back for what the user-data stream missed; a TRANSFER row
    (money moved in or out, `transfer_income`) has the same fields.

    `tran_id` is the exchange's transaction id ("unique in the same incomeType for a user");
    `amount` is in `asset`, positive = received, negative = paid; `symbol` "" when the
    exchange names none.
    """
    tran_id: str
    symbol: str
    amount: Decimal
    asset: str
    time: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class Quote:
    """One symbol's latest top of book and mark price, pushed by the exchange's market streams
    (Binance: <symbol>@bookTicker and <symbol>@markPrice@1s) or read off the simulator.

    `funding_rate` is None when the exchange sent none (a delivery contract sends "").
    `at` is the injected clock's time at which the newest part arrived; a quote is only
    as fresh as its oldest part, which `Exchange.quote(symbol, max_age)` checks.
    `top`: the BookTicker of this very bid and ask when its maker holds one (the simulator
    keeps one per price): `book` gives it instead of making another every tick.
    """
    symbol: str
    bid: Decimal
    ask: Decimal
    mark: Decimal
    funding_rate: Decimal | None
    at: datetime
    top: BookTicker | None = field(default=None, compare=False, repr=False)

    @property
    def book(self) -> BookTicker:
        """The top of book as `book_ticker()` answers it over REST."""
        top = self.top
        return top if top is not None else BookTicker(self.symbol, self.bid, self.ask)


class ExchangeError(Exception):
    """The exchange answered with an error. `code` is Binance's (e.g. -2019), 0 if none."""

    def __init__(self, code: int, message: str, http_status: int = 400,
                 retry_after: float | None = None) -> None:
        super().__init__(f"code={code} http={http_status} {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after


class MultiAssetsMode(ExchangeError):
    """Binance refused ISOLATED margin because the account is in Multi-Assets mode (-4168):
    that mode allows cross margin only."""


class CircuitOpen(ExchangeError):
    """Not sent: the exchange rate-limited or banned us and Retry-After has not passed yet."""

    def __init__(self, remaining_seconds: float, reason: str, http_status: int = 429,
                 opened_at: datetime | None = None) -> None:
        """`http_status`: the answer that opened the circuit (418 is the IP ban, and says so);
        `opened_at`: when it opened, one value for every refusal of one circuit."""
        super().__init__(-1003, f"not sent: API circuit open for {remaining_seconds:.1f}s more "
                         f"({reason})", http_status=http_status, retry_after=remaining_seconds)
        self.opened_at = opened_at


# Binance (general info, LIMITS): "IP bans are tracked and scale in duration for repeat
# offenders, from 2 minutes to 3 days". No wait for Binance is longer: a longer Retry-After
# (a proxy's, a bug's) or a window saved by a clock that ran ahead is cut to it.
LONGEST_BAN = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class CircuitState:
    """The adapter's rate-limit circuit: open until `open_until` (None: closed)."""
    open_until: datetime | None
    reason: str = ""
    opened_at: datetime | None = None
    http_status: int = 429            # of the answer that opened it: 429, or 418 (IP ban)
    told: bool = True                 # the answer gave Retry-After (else the gate's default)

    def is_open(self, now: datetime) -> bool:
        return self.open_until is not None and now < self.open_until


class MalformedResponse(ExchangeError):
    """Binance answered (HTTP 2xx, or a stream event) but without a field we cannot do without.

    Code 0: no Binance error code applies. The message names the endpoint (or event) and
    the field; the codec logs the payload, truncated, where it raises this.
    """

    def __init__(self, endpoint: str, field: str) -> None:
        super().__init__(0, f"{endpoint}: unreadable answer, {field} missing or invalid",
                         http_status=200)
        self.endpoint = endpoint
        self.field = field


class UnknownOutcome(Exception):
    """The request may or may not have reached the matching engine (no answer, or one that
    leaves its execution unknown: trader/exchange/errors.py `execution_unknown`)."""

    def __init__(self, message: str, code: int = 0, http_status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@runtime_checkable
class Exchange(Protocol):
    """What the engine needs from an exchange. All prices/quantities are Decimal."""

    name: str

    async def start(self, symbols: list[str], leverage: int) -> None:
        """Load exchange info, verify one-way mode, set margin type/leverage, sync time."""

    async def close(self) -> None: ...

    def rules(self, symbol: str) -> SymbolRules: ...

    async def place(self, request: OrderRequest) -> Order:
        """Send one order. Conditional types go to the algo API keyed by the client id (the
        classic order endpoint where a server has no algo API: binance_algo_presence.py)."""

    async def cancel(self, symbol: str, client_id: str) -> Order | None:
        """Cancel by client id; the order's final state, or None when the exchange knew no such
        live order or only acknowledged the cancel (Binance's algo cancel): read it back to
        know its final state (`Executor.cancel_and_verify` does)."""

    async def order_by_client_id(self, symbol: str, client_id: str) -> Order | None:
        """Query one order (plain or algo) by client id; None if the exchange has none."""

    async def open_orders(self, symbol: str) -> list[Order]:
        """All live orders on the symbol, plain and conditional."""

    async def position(self, symbol: str) -> ExchangePosition: ...

    async def balance(self) -> Balance: ...

    async def fills(self, symbol: str, since: datetime) -> list[Fill]: ...

    async def klines(self, symbol: str, interval: str, start: datetime | None = None,
                     limit: int = 500) -> list[Candle]:
        """Candles oldest first, the one in progress included with `closed` False: closed is
        the exchange's word (its clock, its next kline begun), never the host's clock."""

    async def book_ticker(self, symbol: str) -> BookTicker: ...

    def quote(self, symbol: str, max_age: timedelta) -> Quote | None:
        """The latest pushed quote if its every part is at most `max_age` old (never blocks,
        sends nothing); None when the market streams are down, slow or not there yet: then
        read `book_ticker` / `position` over REST."""

    def pushed_book(self, symbol: str, max_age: timedelta) -> BookTicker | None:
        """The latest pushed top of book if at most `max_age` old, whatever the mark's age
        (never blocks, sends nothing); None: read `book_ticker` over REST."""

    def pushed_mark(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The latest pushed mark price if at most `max_age` old, whatever the book's age
        (never blocks, sends nothing); None: read `mark_price` over REST."""

    def pushed_funding_rate(self, symbol: str, max_age: timedelta) -> Decimal | None:
        """The funding rate pushed with the mark (Binance's markPriceUpdate "r") if at most
        `max_age` old, whatever the book's age; None: read `funding_rate` over REST."""

    async def mark_price(self, symbol: str) -> Decimal:
        """The exchange's mark price of `symbol` now (> 0), read over REST: what its
        stops trigger on (workingType MARK_PRICE), never the book's middle (Binance: GET
        /fapi/v1/premiumIndex "markPrice", weight 1)."""

    async def funding_rate(self, symbol: str) -> Decimal: ...

    async def asset_price(self, asset: str) -> Decimal:
        """What one unit of `asset` is worth in USDT (> 0): a fee charged in it (BNB with
        "BNB burn" on) is valued with it at the close (trader/fee_prices.py). A short read
        tried once: the close waits for it, and does without it (valued later)."""

    async def funding_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """Funding paid or received between `since` and `until` (both included), oldest
        first: what the user-data stream may have missed while it was down. The paper
        exchange answers [] (its funding events never go missing)."""

    async def transfer_income(self, since: datetime, until: datetime) -> list[FundingIncome]:
        """Money moved in (+) or out (-) between `since` and `until` (both included), oldest
        first: deposits, withdrawals and transfers the user-data stream may have missed
        (Binance: TRANSFER rows of the income history). The paper exchange answers []."""

    async def set_leverage(self, symbol: str, leverage: int) -> None: ...

    async def set_isolated_margin(self, symbol: str) -> None:
        """ISOLATED margin on `symbol` (nothing to do when it is already: Binance's -4046 is
        success). Raises MultiAssetsMode when the account's asset mode allows cross margin
        only, ExchangeError for another refusal. The paper exchange has one margin."""

    async def multi_assets_mode(self) -> bool:
        """Whether the account is in Multi-Assets mode now (Binance: GET
        /fapi/v1/multiAssetsMargin, weight 30); the paper exchange never is."""

    # --- push side: what the user-data stream (or the simulator) reported -------------
    def drain_events(self) -> list[ExchangeEvent]:
        """Events received since the last call, oldest first (bounded; never blocks)."""

    async def wait_for_event(self, timeout: float) -> bool:
        """Return True as soon as an event is waiting, False after `timeout` seconds."""

    @property
    def streaming(self) -> bool:
        """True while the user-data stream is live; False means REST polling only."""

    def circuit(self) -> CircuitState:
        """The rate-limit circuit: while open, every request fails at once with CircuitOpen."""

    def on_stream_reconnect(self, callback: Callable[[], None]) -> None:
        """Call `callback` (quick, no arguments) whenever the user-data stream is back after
        an outage: what it reported meanwhile is lost, the caller resyncs over REST."""

    def on_circuit_open(self, callback: Callable[[CircuitState], None]) -> None:
        """Call `callback` (quick) with the circuit each time an answer opens it or moves
        its end later: kept, a restart inside the window sends nothing either."""

    def restore_circuit(self, circuit: CircuitState) -> None:
        """A circuit a previous process opened (its end kept: trader/circuit_memory.py):
        nothing is sent until it ends, as if this process had been answered so."""

    def doubt_stream(self) -> None:
        """A REST read found a change the user-data stream never reported: let the stream
        check itself now rather than at its own silence check (quick, no await; the check
        runs beside the caller)."""

    async def refresh_rules(self) -> list[str]:
        """Re-read the symbols' trading rules (tick/step/notional, status); one line per change."""

    async def learn_rules(self, symbol: str) -> bool:
        """Read the rules of a symbol the agent does not trade (to close a position on it);
        False when the exchange does not list it. `rules(symbol)` has them after True."""


def clock_offset(exchange: Exchange) -> timedelta:
    """The exchange's clock minus the host's, as the exchange last measured it
    (`clock_offset_ms`: Binance's GET /fapi/v1/time); 0 for one that measures none (the
    paper exchange runs on the host's clock). A fill carries the exchange's time, a
    position the host's: trader/position_fills.py widens its windows by this much."""
    return timedelta(milliseconds=getattr(exchange, "clock_offset_ms", 0))


def stream_states(exchange: Exchange) -> dict[str, str]:
    """The exchange's push streams: "up", "down", or "polling" (never started: the agent
    reads REST by design). Binance has three sockets (trader/exchange/binance_streams.py);
    the paper exchange one simulated user-data stream."""
    streams = getattr(exchange, "streams", None)
    if streams is None:
        return {"user_data": "up" if exchange.streaming else "polling"}
    states: dict[str, str] = streams.states()
    return states
