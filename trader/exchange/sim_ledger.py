"""The simulated account: one-way positions with average entry, wallet, margin and funding.

Money rules (Binance USD-M, isolated margin):
- wallet = initial balance + realised PnL - fees + funding (kept as a running balance);
- realised PnL = (exit - entry) x closed quantity x sign of the position, fees excluded
  (as Binance's `realizedPnl`); the average entry price keeps full Decimal precision;
- a position's isolated margin = |quantity| x entry / leverage; available balance =
  wallet - isolated margins - margin reserved by resting orders (isolated losses are
  absorbed by the position's margin until liquidation, so they do not reduce it);
- liquidation price (isolated, first maintenance bracket, no insurance-fund fee):
  long  E x (1 - 1/L) / (1 - mmr), short E x (1 + 1/L) / (1 + mmr): where the position's
  margin plus its unrealised PnL equals the maintenance margin.
Realised PnL, fees and funding are rounded to 8 decimals, as Binance books them, so the
wallet is always an exact sum.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from trader.domain import ZERO, Balance, ExchangePosition, Side
from trader.fast_init import fast_init

MONEY_QUANTUM = Decimal("0.00000001")


def money(amount: Decimal) -> Decimal:
    """Round an amount of USDT as Binance books fees and funding (8 decimals)."""
    # the rounding by position (quantize(exp, rounding=None, context=None)): the same call,
    # without _decimal's slower keyword parsing
    return amount.quantize(MONEY_QUANTUM, ROUND_HALF_UP)


@fast_init          # one per simulated fill
@dataclass(frozen=True, slots=True)
class SimPosition:
    quantity: Decimal = ZERO      # signed: > 0 long, < 0 short
    entry_price: Decimal = ZERO

    @property
    def sign(self) -> int:
        return (self.quantity > 0) - (self.quantity < 0)


FLAT = SimPosition()


def unrealized_pnl(held: SimPosition, mark: Decimal) -> Decimal:
    """(mark - entry) x the signed quantity; 0 when flat."""
    return (mark - held.entry_price) * held.quantity if held.quantity else ZERO


def isolated_margin(held: SimPosition, leverage: int) -> Decimal:
    """|quantity| x entry / leverage."""
    return abs(held.quantity) * held.entry_price / leverage


class Ledger:
    """Positions and money of one simulated futures account."""

    def __init__(self, balance: Decimal, default_leverage: int) -> None:
        self.initial_balance = balance
        self.wallet = balance
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.funding = ZERO
        self.default_leverage = default_leverage
        self.positions: dict[str, SimPosition] = {}
        self.leverages: dict[str, int] = {}
        # per symbol, the last position reported and what it was made from
        self._reported: dict[str, tuple[SimPosition, Decimal, int, ExchangePosition]] = {}
        # the last balance of a flat account and the wallet and reserved margin it is of
        self._flat_balance: tuple[Decimal, Decimal, Balance] | None = None

    def position(self, symbol: str) -> SimPosition:
        return self.positions.get(symbol, FLAT)

    def leverage(self, symbol: str) -> int:
        return self.leverages.get(symbol, self.default_leverage)

    def apply_fill(self, symbol: str, side: Side, quantity: Decimal, price: Decimal,
                   fee: Decimal) -> Decimal:
        """Book one fill; return the realised PnL of the part that reduced the position."""
        held = self.positions.get(symbol, FLAT)      # `position(symbol)`
        side_sign, held_sign = side.sign, held.sign   # (properties: read once each)
        signed = quantity * side_sign
        realized = ZERO
        if held_sign == 0 or held_sign == side_sign:
            new_qty = held.quantity + signed
            entry = (held.entry_price * abs(held.quantity) + price * quantity) / abs(new_qty)
            updated = SimPosition(new_qty, entry)
        else:
            closed = min(quantity, abs(held.quantity))
            realized = money((price - held.entry_price) * closed * held_sign)
            new_qty = held.quantity + signed
            if new_qty == 0:
                updated = FLAT
            elif (new_qty > 0) == (held.quantity > 0):
                updated = SimPosition(new_qty, held.entry_price)
            else:
                updated = SimPosition(new_qty, price)   # flipped: the remainder opens at price
        self._store(symbol, updated)
        self.realized_pnl += realized
        self.fees += fee
        self.wallet += realized - fee
        return realized

    def apply_funding(self, symbol: str, rate: Decimal, mark: Decimal) -> Decimal:
        """Longs pay positive rates: amount = -sign x |notional at mark| x rate."""
        held = self.position(symbol)
        if held.sign == 0:
            return ZERO
        amount = money(-held.sign * abs(held.quantity) * mark * rate)
        self.funding += amount
        self.wallet += amount
        return amount

    def _store(self, symbol: str, position: SimPosition) -> None:
        if position.quantity == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = position

    # --- margin ---------------------------------------------------------------------
    def position_margin(self, symbol: str) -> Decimal:
        return isolated_margin(self.position(symbol), self.leverage(symbol))

    def increase_quantity(self, symbol: str, side: Side, quantity: Decimal) -> Decimal:
        """How much of an order of `quantity` on `side` would open or add exposure."""
        held = self.position(symbol)
        if held.sign == 0 or held.sign == side.sign:
            return quantity
        return max(quantity - abs(held.quantity), ZERO)

    def margin_shortfall(self, symbol: str, side: Side, quantity: Decimal, price: Decimal,
                         fee_rate: Decimal, reserved: Decimal) -> Decimal:
        """> 0 when the new exposure's margin plus fee exceeds what is available."""
        # `increase_quantity` and `position_margin` inline (every entry), each sign read once
        held = self.positions.get(symbol, FLAT)
        held_sign, side_sign = held.sign, side.sign
        adding = held_sign == 0 or held_sign == side_sign
        opening = quantity if adding else max(quantity - abs(held.quantity), ZERO)
        if opening == 0:
            return ZERO
        leverage = self.leverages.get(symbol, self.default_leverage)
        released = ZERO
        if not adding:      # a flip first frees the closed position's margin
            released = isolated_margin(held, leverage)
        needed = opening * price / leverage + quantity * price * fee_rate
        available = self.available(reserved) + released
        return max(needed - available, ZERO)

    def available(self, reserved: Decimal) -> Decimal:
        # (`_balance` does the same sum inline: tests/test_sim_balance_inline.py)
        margins = ZERO   # summed as sum(..., ZERO) would: the same Decimal, digit for digit
        for symbol, held in self.positions.items():
            margins += isolated_margin(held, self.leverage(symbol))
        return self.wallet - margins - reserved

    def liquidation_price(self, symbol: str, maintenance_rate: Decimal) -> Decimal | None:
        held = self.position(symbol)
        if held.sign == 0:
            return None
        inverse_leverage = Decimal(1) / self.leverage(symbol)
        if held.sign > 0:
            return held.entry_price * (1 - inverse_leverage) / (1 - maintenance_rate)
        return held.entry_price * (1 + inverse_leverage) / (1 + maintenance_rate)

    # --- views ----------------------------------------------------------------------
    def exchange_position(self, symbol: str, mark: Decimal) -> ExchangePosition:
        """The position as the exchange reports it; the same (immutable) answer while the
        position, the mark and the leverage stay the very same objects."""
        held = self.positions.get(symbol, FLAT)
        leverage = self.leverage(symbol)
        cached = self._reported.get(symbol)
        if cached is not None and cached[0] is held and cached[1] is mark \
                and cached[2] == leverage:
            return cached[3]
        # by position, in the field order (keywords cost ~400 instructions each)
        reported = ExchangePosition(symbol, held.quantity, held.entry_price, mark,
                                    unrealized_pnl(held, mark), leverage)
        self._reported[symbol] = (held, mark, leverage, reported)
        return reported

    def balance(self, marks: dict[str, Decimal], reserved: Decimal) -> Balance:
        """The account's balance at `marks`, `reserved` the margin resting orders hold. A
        flat account's is kept while the very same wallet and reserved Decimals come back
        (the engine reads it every candle; Decimals never change, so neither does it)."""
        flat = self._flat_balance
        if not self.positions and flat is not None and flat[0] is self.wallet \
                and flat[1] is reserved:
            return flat[2]
        balance = self._balance(marks, reserved)
        self._flat_balance = None if self.positions else (self.wallet, reserved, balance)
        return balance

    def balance_current(self, balance: Balance, reserved: Decimal) -> bool:
        """Whether `balance` is what `balance(marks, reserved)` answers now, whatever the
        marks: the flat account's kept one, the same wallet and reserved Decimals."""
        flat = self._flat_balance
        return (not self.positions and flat is not None and flat[2] is balance
                and flat[0] is self.wallet and flat[1] is reserved)

    def _balance(self, marks: dict[str, Decimal], reserved: Decimal) -> Balance:
        # Every in-position candle's read: one pass doing `unrealized_pnl` and `available`'s
        # (`isolated_margin`'s) arithmetic inline, in their order (the same Decimals, digit
        # for digit), four calls a position fewer
        unrealized = ZERO   # summed as sum(..., ZERO) would: the same Decimal, digit for digit
        margins = ZERO
        leverages, default_leverage = self.leverages, self.default_leverage
        for symbol, held in self.positions.items():
            quantity, entry = held.quantity, held.entry_price
            mark = marks.get(symbol)
            if mark is not None:
                unrealized += (mark - entry) * quantity if quantity else ZERO
            margins += abs(quantity) * entry / leverages.get(symbol, default_leverage)
        # by position (wallet, unrealized_pnl, available)
        wallet = self.wallet
        return Balance(wallet, unrealized, wallet - margins - reserved)
