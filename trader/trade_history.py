"""The operator's history views from the journal: realised PnL of a period, the daily /
weekly / monthly table, per-symbol performance and the last trades.

"Realised" has one meaning everywhere (/pnl, /daily, the daily summary, the close alert):
net of trading fees and funding. A period counts the trades CLOSED in it and the funding
PAID or RECEIVED in it (funding is a cash flow at its own time); a single trade's net counts
the funding of its symbol while it was open. Funding the exchange did not attribute to a
symbol (Binance's cross-margin ACCOUNT_UPDATE carries no position) counts in the periods and
shows as its own row in /performance.

Pure: the engine passes closed positions, funding payments and `now` in.

    view = period_pnl("week", closed, funding, since=now - timedelta(days=7))
    table = period_table("day", 7, closed, funding, now, wallet=balance.wallet)
"""

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trader.close_record import traded_size
from trader.commands import PerformanceRow, PeriodRow, PeriodTable, PnlView, TradeView
from trader.display import on_step
from trader.domain import ZERO, CloseReason
from trader.evolve import evolve
from trader.fee_value import unvalued, unvalued_in
from trader.position import Position
from trader.symbol_rules import SymbolRules
from trader.trade_stats import TradeRecord, by_symbol
from trader.trade_store import FundingPayment

UNITS = ("day", "week", "month")
LOOKBACK = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


def counted(closed: Sequence[Position]) -> list[Position]:
    """The closed positions that were trades with a known result (an entry that never filled
    is not a trade; a close whose fills could not be read has no result to count)."""
    return [p for p in listed(closed) if p.exit_price is not None]


def listed(closed: Sequence[Position]) -> list[Position]:
    """The closed positions that were trades, a result unknown included: a close whose
    closing fills could not be read (trader/closing.py) has no exit price nor PnL, and is
    shown as such rather than left out."""
    return [p for p in closed if p.closed_at is not None
            and p.close_reason not in (None, CloseReason.UNKNOWN)]


def trade_funding(position: Position, funding: Sequence[FundingPayment]) -> Decimal:
    """Funding paid (-) or received (+) on the position's symbol while it was open."""
    closed_at = position.closed_at or datetime.max.replace(tzinfo=UTC)
    return sum((f.amount for f in funding if f.symbol == position.symbol
                and position.opened_at <= f.at <= closed_at), ZERO)


def trades_with_funding(closed: Sequence[Position],
                        funding: Sequence[FundingPayment]) -> list[TradeRecord]:
    """One TradeRecord per position, its funding as `trade_funding` counts it, in
    O((trades + payments) log payments): a backtest of years pays funding thousands of times
    and closes thousands of trades (prefix sums per symbol, exact in Decimal)."""
    return with_funding([TradeRecord.from_position(position) for position in closed], funding)


def with_funding(records: Sequence[TradeRecord],
                 funding: Sequence[FundingPayment]) -> list[TradeRecord]:
    """`records` (made with no funding) with the funding of each as `trade_funding` counts
    it: the same records `trades_with_funding` makes of their positions, digit for digit
    (net = gross - fees + funding, as `TradeRecord.from_position` computes it)."""
    timeline: dict[str, tuple[list[datetime], list[Decimal]]] = {}
    for payment in sorted(funding, key=lambda f: f.at):
        times, sums = timeline.setdefault(payment.symbol, ([], [ZERO]))
        times.append(payment.at)
        sums.append(sums[-1] + payment.amount)
    funded = []
    for record in records:
        times, sums = timeline.get(record.symbol, ([], [ZERO]))
        paid = sums[bisect_right(times, record.closed_at)] - sums[bisect_left(times,
                                                                             record.opened_at)]
        funded.append(evolve(record, funding=paid,
                             net_pnl=record.gross_pnl - record.fees + paid))
    return funded


def trade_net(position: Position, funding: Sequence[FundingPayment]) -> Decimal:
    """One trade's realised PnL: gross - fees + its funding."""
    return position.realized_pnl - position.fees + trade_funding(position, funding)


def period_pnl(period: str, closed: Sequence[Position], funding: Sequence[FundingPayment],
               since: datetime | None, until: datetime | None = None) -> PnlView:
    """Trades closed and funding booked in [since, until) (open-ended when None)."""
    def inside(moment: datetime) -> bool:
        return (since is None or moment >= since) and (until is None or moment < until)
    in_period = [p for p in listed(closed) if p.closed_at is not None and inside(p.closed_at)]
    trades = [p for p in in_period if p.exit_price is not None]
    # a trade with a fee in BNB not valued (its price unread at the close) is no win on a
    # net that leaves the fee out (as for the loss streak: close_record.lost)
    return PnlView(
        period, gross=sum((p.realized_pnl for p in trades), ZERO),
        fees=sum((p.fees for p in trades), ZERO),
        funding=sum((f.amount for f in funding if inside(f.at)), ZERO), trades=len(trades),
        wins=sum(1 for p in trades if trade_net(p, funding) > 0
                 and not unvalued(p.fees_in_kind)),
        unknown=len(in_period) - len(trades),
        unvalued_fees=unvalued_in(p.fees_in_kind for p in trades))


def period_start(unit: str, moment: datetime) -> datetime:
    """00:00 UTC of the day, of the week's Monday, or of the month's first day."""
    day = moment.astimezone(UTC).date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def previous_start(unit: str, start: datetime) -> datetime:
    if unit == "day":
        return start - timedelta(days=1)
    if unit == "week":
        return start - timedelta(days=7)
    return period_start("month", start - timedelta(days=1))


def period_table(unit: str, count: int, closed: Sequence[Position],
                 funding: Sequence[FundingPayment], now: datetime,
                 wallet: Decimal | None) -> PeriodTable:
    """The last `count` periods, newest first. A period's % is its net PnL over the wallet
    at its start, worked back from `wallet` now (deposits and withdrawals are not known)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    rows: list[PeriodRow] = []
    end: datetime | None = None
    start = period_start(unit, now)
    balance = wallet
    for _ in range(count):
        view = period_pnl(unit, closed, funding, start, end)
        at_start = balance - view.net if balance is not None else None
        fraction = view.net / at_start if at_start is not None and at_start > 0 else None
        rows.append(PeriodRow(start.date(), view.trades, view.net, fraction))
        balance, end, start = at_start, start, previous_start(unit, start)
    return PeriodTable(unit, rows)


def performance(closed: Sequence[Position],
                funding: Sequence[FundingPayment]) -> list[PerformanceRow]:
    """One row per symbol that traded, best net first; funding no trade explains at the end."""
    trades = counted(closed)
    records = trades_with_funding(trades, funding)
    # a trade whose fee in BNB was not valued is no win on a net that leaves the fee out
    # (as /pnl and the loss streak: close_record.lost)
    unsure = [p for p in trades if unvalued(p.fees_in_kind)]
    rows = [PerformanceRow(
        s.label, s.trades,
        s.wins - sum(1 for p in unsure if p.symbol == s.label and trade_net(p, funding) > 0),
        s.net_pnl, s.fees, s.funding, s.best, s.worst,
        unvalued_in(p.fees_in_kind for p in unsure if p.symbol == s.label))
        for s in by_symbol(records)]
    rows.sort(key=lambda row: (-row.net, row.symbol))
    explained = sum((r.funding for r in records), ZERO)
    rest = sum((f.amount for f in funding), ZERO) - explained
    if rest != 0:
        rows.append(PerformanceRow("", 0, 0, rest, ZERO, rest, ZERO, ZERO))
    return rows


def recent_trades(closed: Sequence[Position], funding: Sequence[FundingPayment], count: int,
                  rules: Callable[[str], SymbolRules | None]) -> list[TradeView]:
    """The last `count` closed trades, newest first, prices on the symbol's tick; a trade
    whose result is unknown has no exit price nor net (None)."""
    views = []
    for position in reversed(listed(closed)[-count:] if count > 0 else []):
        symbol_rules = rules(position.symbol)
        tick = symbol_rules.tick_size if symbol_rules else None
        step = symbol_rules.step_size if symbol_rules else None
        size = traded_size(position)           # what it held, not what it planned
        assert position.closed_at is not None
        known = position.exit_price is not None
        net = trade_net(position, funding) if known else None
        notional = position.entry_price * size
        views.append(TradeView(
            symbol=position.symbol, side=position.side.label, quantity=on_step(size, step),
            entry_price=on_step(position.entry_price, tick),
            exit_price=None if position.exit_price is None else on_step(position.exit_price, tick),
            opened_at=position.opened_at, closed_at=position.closed_at, net=net,
            net_fraction=None if net is None else net / notional if notional > 0 else ZERO,
            reason=position.close_reason.value if position.close_reason else "?",
            unvalued_fees=unvalued_in([position.fees_in_kind])))
    return views
