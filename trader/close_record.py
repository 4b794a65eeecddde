"""The final record of a closed position, pure: why it closed and what it made.

Why, in this order: the exchange itself (its last closing fill came from a liquidation,
ADL or settlement order: Binance's special client ids, see `exchange_close_reason`), then
the final state of the position's own legs (take-profit filled; stop filled: a trailing
stop, a breakeven stop when its trigger was at or past the entry after the partial
take-profit or TP1, else the stop-loss; TP1 filled and took what was left) or, when the
agent never saw its legs (closed while it was down) or the last closing fill was an
earlier order of a leg (replaced, still live), the role in that fill's client id; then
the close the agent was making, unless the last closing fill was somebody else's (a hand
close in the app that got there first: the agent's market close found nothing to close);
else by hand.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from trader.display import price
from trader.domain import (
    LIQUIDATION_ADVICE,
    ZERO,
    ClientId,
    CloseReason,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    Side,
    exchange_close_reason,
)
from trader.evolve import evolve
from trader.fee_value import trade_fees, unvalued
from trader.position import Position, PositionState

TAKE_PROFIT_ROLES = (OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1)

# What the operator should look at after the exchange closed a position (the CLOSE's
# EXCHANGE_CLOSE alert, told at the close or once its fills are read back): a liquidation
# comes from the position's own margin; an ADL from a counterparty's liquidation, with the
# position in profit (Binance's ADL ranking: profit and leverage), not from the account.
AFTER_EXCHANGE_CLOSE = {
    CloseReason.LIQUIDATION: LIQUIDATION_ADVICE,
    CloseReason.ADL: ("Auto-deleveraged: Binance closed it against a liquidated counterparty; "
                      "not caused by this account's margin."),
    CloseReason.SETTLEMENT: "The exchange settled the symbol (delisting or delivery).",
}


def close_reason(position: Position, stop: Order | None, take_profit: Order | None,
                 pending: CloseReason | None, fills: Sequence[Fill] = (),
                 first_target: Order | None = None) -> CloseReason:
    """`stop`, `take_profit`, `first_target` (TP1): the legs' final orders as read at the
    close, None when not known."""
    closing = [f for f in fills if f.side is position.side.opposite]
    last_role, by_hand, last_price = None, False, None
    if closing:
        last_fill = max(closing, key=lambda f: f.time)
        last, last_price = last_fill.client_id, last_fill.price
        by_exchange = exchange_close_reason(last)
        if by_exchange is not None:
            return by_exchange
        parsed = ClientId.parse(last)
        last_role = parsed.role if parsed is not None and position.owns(last) else None
        by_hand = last_role is None and last != ""      # "": an order Binance cannot name
    if (take_profit is not None and take_profit.status is OrderStatus.FILLED) or (
            take_profit is None and last_role in TAKE_PROFIT_ROLES):
        return CloseReason.TAKE_PROFIT
    if (stop is not None and stop.status is OrderStatus.FILLED) or (
            stop is None and last_role is OrderRole.STOP_LOSS):
        trigger = stop.trigger_price if stop is not None and stop.trigger_price is not None \
            else position.stop.trigger_price
        return _stop_reason(position, trigger)
    # The last closing fill is one of ours, but not of the leg's order as read: an earlier
    # stop or take-profit, replaced (a /sl move, breakeven) and still live (its cancel
    # failed, or raced the trigger). Its level is not on record: its fill price stands in.
    if last_role in TAKE_PROFIT_ROLES:
        return CloseReason.TAKE_PROFIT
    if last_role is OrderRole.STOP_LOSS and last_price is not None:
        return _stop_reason(position, last_price)
    if first_target is not None and first_target.status is OrderStatus.FILLED:
        return CloseReason.TAKE_PROFIT        # TP1 took what was left (reduced by hand)
    if pending is not None and pending is not CloseReason.MANUAL and not by_hand:
        return pending
    return CloseReason.MANUAL


def _stop_reason(position: Position, trigger: Decimal) -> CloseReason:
    """A stop of the position closed it: trailing, at breakeven (`trigger` at or past the
    entry after the partial take-profit or TP1), or the stop-loss."""
    if position.trailing_active:
        return CloseReason.TRAILING_STOP
    if position.partial_taken and (trigger - position.entry_price) * position.side.sign >= 0:
        return CloseReason.BREAKEVEN_STOP     # the stop had been moved to breakeven
    return CloseReason.STOP_LOSS


def closed(position: Position, at: datetime, reason: CloseReason, fills: Sequence[Fill],
           beyond: Decimal = ZERO, prices: Mapping[str, Decimal] | None = None) -> Position:
    """The final record, PnL and fees from the position's exchange fills; its size
    (`traded_quantity`) is what the closing fills closed in all: what it held, which for a
    maker entry whose rest was given up is less than the entry asked for.

    `beyond`: what the exchange holds now on the other side (a LONG reversed by hand with
    one SELL larger than it: the SHORT it opened). That much of the newest closing fills
    opened the new position, not closed this one (`own_part`).

    `prices`: the USDT price of each asset other than USDT a fee was charged in (BNB with
    "BNB burn" on), read at the close (trader/fee_prices.py); a fee in an asset without
    one is kept unvalued in `fees_in_kind`, out of `fees` (trader/fee_value.py)."""
    closing_side = position.side.opposite
    own = own_part(fills, closing_side, beyond)
    exits = [(f, q) for f, q in own if f.side is closing_side]
    exit_qty = sum((q for _, q in exits), ZERO)
    exit_price = (sum((f.price * q for f, q in exits), ZERO) / exit_qty) if exit_qty else None
    realized = sum((f.realized_pnl for f, _ in own), ZERO)
    fees, in_kind = trade_fees(((f, f.fee * q / f.quantity if f.quantity else f.fee)
                                for f, q in own), prices or {})
    return evolve(position, state=PositionState.CLOSED, quantity=ZERO, closed_at=at,
                  close_reason=reason, exit_price=exit_price, realized_pnl=realized, fees=fees,
                  closing_reason=None, traded_quantity=exit_qty, fees_in_kind=in_kind)


def own_part(fills: Sequence[Fill], closing_side: Side,
             beyond: Decimal) -> list[tuple[Fill, Decimal]]:
    """Each fill with the quantity of it that was this position's: all of it, except the
    newest closing fills' last `beyond`, which opened the next position on the other side.
    Binance reports a reversing trade as one fill with one commission (userTrades,
    ORDER_TRADE_UPDATE "n"): its fee is shared pro rata; its realized profit is the closed
    part's alone (the part that opens realizes nothing), so it stays whole. A fill wholly
    beyond is left out."""
    left = max(beyond, ZERO)
    parts: list[tuple[Fill, Decimal]] = []
    for fill in reversed(sorted(fills, key=lambda f: f.time)):     # newest first
        quantity = fill.quantity
        if left > 0 and fill.side is closing_side:
            taken = min(left, quantity)
            left -= taken
            quantity -= taken
            if quantity <= 0:
                continue
        parts.append((fill, quantity))
    parts.reverse()
    return parts


def over_closed(position: Position, fills: Sequence[Fill]) -> Decimal:
    """How much more the position's closing fills closed than its opening fills opened: a
    reversal by hand (one order larger than the position) opened that much on the other
    side; the `beyond` of `closed` when what the exchange held after the close is not
    known (the close read back later). 0 with no opening fill among them (an adopted
    position: what it held is not in its fills)."""
    opened = sum((f.quantity for f in fills if f.side is position.side), ZERO)
    closing = sum((f.quantity for f in fills if f.side is position.side.opposite), ZERO)
    return max(closing - opened, ZERO) if opened > 0 else ZERO


def result_unknown(position: Position) -> bool:
    """A trade's close (not an entry that never filled) with no closing fill read."""
    return position.closed_at is not None and position.exit_price is None \
        and position.close_reason not in (None, CloseReason.UNKNOWN)


def lost(position: Position) -> bool | None:
    """Whether a closed trade lost, net of its fees, as the loss streak counts it; None
    when that is not known: no closing fill read (`result_unknown`), or a fee charged in
    another asset (BNB) whose price could not be read and whose trade is not a loss even
    without it (the fee could only make it one: it is not counted as a win on a net that
    leaves it out). The streak leaves an unknown result as it was (trader/cooldowns.py)."""
    if result_unknown(position):
        return None
    net = position.realized_pnl - position.fees
    missing = unvalued(position.fees_in_kind)
    if missing and not (net < 0 and all(fee.amount >= 0 for fee in missing)):
        return None
    return net < 0


def traded_size(position: Position) -> Decimal:
    """A closed trade's size, unsigned, in the base asset: what it held (`traded_quantity`);
    a record without it (closed before it was kept, or no closing fill read) falls back on
    what the entry asked for, else the quantity on record."""
    return position.traded_quantity or position.initial_quantity or position.quantity


def exit_text(position: Position, tick: Decimal | None) -> str:
    """How a closed position's exit price reads: " at 70,703.1", or, when part of it was
    closed earlier (the first profit, TP1: `partial_taken`), "; average exit 70,703.1 over
    every exit (part was closed earlier)": the record's price is the volume-weighted
    average of all its exits (`closed`), not the last fill's. "" when no exit is known."""
    if position.exit_price is None:
        return ""
    shown = price(position.exit_price, tick)
    if position.partial_taken:
        return f"; average exit {shown} over every exit (part was closed earlier)"
    return f" at {shown}"
