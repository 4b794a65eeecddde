"""/chart's answer: one symbol's recent candles, trades and open position and the account's
equity, read from the engine's current view, then drawn by trader/chart.py in a worker
thread so the engine's loop (ticks, streams, the bot) never waits on matplotlib.

    result = await answer_chart(engine, "BTCUSDT")   # or None: the symbol in play
"""

import asyncio
from datetime import timedelta

from trader.chart import ChartInputs, trading_chart_png, window_start
from trader.chart_style import duration_text
from trader.commands import CommandResult
from trader.domain import CloseReason
from trader.engine import Engine
from trader.metrics import EquityPoint, TradeRecord
from trader.position import Position
from trader.trade_history import trades_with_funding
from trader.views import position_views

RECENT = timedelta(days=7)   # the default symbol is the last one traded this recently


async def answer_chart(engine: Engine, symbol: str | None) -> CommandResult:
    """The /chart picture of `symbol` (None: the symbol of an open position, else of the
    last trade, else the first configured) with a one-line caption."""
    inputs = chart_inputs(engine, symbol or chart_symbol(engine))
    png = await asyncio.to_thread(trading_chart_png, inputs)
    return CommandResult(True, lines=[caption(inputs, engine.symbols)], png=png)


def chart_symbol(engine: Engine) -> str:
    if engine.positions:
        return sorted(engine.positions)[0]
    recent = engine.store.closed_positions(engine.clock.now() - RECENT)
    return recent[-1].symbol if recent else engine.symbols[0]


def chart_inputs(engine: Engine, symbol: str) -> ChartInputs:
    """A snapshot of what /chart draws (immutable values: safe to hand to another thread)."""
    now = engine.clock.now()
    prices = [(candle.close_time, candle.close) for candle in engine.candles.get(symbol, ())]
    start = prices[0][0] if prices else None
    closed = [p for p in engine.store.closed_positions(start) if _countable(p)]
    equity = [EquityPoint(at, value) for at, value in engine.store.equity_curve(start)]
    if engine.balance is not None and (not equity or equity[-1].at < now):
        equity.append(EquityPoint(now, engine.balance.equity))   # recorded once a minute
    traded = bool(engine.positions) or bool(closed)
    ever_traded = traded or any(_countable(p) for p in engine.store.closed_positions())
    open_trade = next((view for view in position_views(engine) if view.symbol == symbol), None)
    return ChartInputs(
        symbol=symbol, now=now, prices=prices,
        trades=_trades(engine, [p for p in closed if p.symbol == symbol]),
        open_trade=open_trade, equity=equity, traded=traded, ever_traded=ever_traded)


def _trades(engine: Engine, closed: list[Position]) -> list[TradeRecord]:
    """The symbol's closed trades with the funding each paid or received while open."""
    if not closed:
        return []
    since = min(p.opened_at for p in closed)
    return trades_with_funding(closed, engine.store.funding_payments(since))


def caption(inputs: ChartInputs, symbols: list[str]) -> str:
    span = duration_text(inputs.now - window_start(inputs))
    others = [s for s in symbols if s != inputs.symbol]
    hint = f" · /chart {others[0]} for another symbol" if others else ""
    return f"{inputs.symbol}: the last {span}{hint}"


def _countable(position: Position) -> bool:
    """A close the journal knows how it ended (UNKNOWN closes have no trustworthy exit)."""
    return position.close_reason not in (None, CloseReason.UNKNOWN) \
        and position.exit_price is not None and position.closed_at is not None
