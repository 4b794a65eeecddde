"""A flat symbol's tick reads the mark over REST only when something uses it.

Binance's mark is pushed by <symbol>@markPrice@1s; when none is (streams off, the market
stream down) it is read with GET /fapi/v1/premiumIndex, weight 1 with a symbol
(https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/
rest-api/Mark-Price), or taken from the position read in the same view ("markPrice" of
GET /fapi/v3/positionRisk). A flat symbol with no record was read it on every tick although
nothing on the tick judged it: with no signal there is no entry to plan, and no position's
rules to run (benchmarks/rest_budget.py, polling, 2 symbols: 28.9 weight a minute of
premiumIndex, 14.5 per symbol-minute, all the flat symbol's). Now its view is taken
unpriced, and the mark is read when an entry is to be planned."""

from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import SYMBOL, booted, market_up_to_now
from tests.test_stop_fill_during_ban import ticks
from trader.domain import Side, Signal
from trader.observe import SymbolView

PREMIUM_INDEX = "GET /fapi/v1/premiumIndex"
PRICE = Decimal("50000")
MARK = Decimal("50012.3")     # premiumIndex's markPrice here (the simulator's price is 50,000)


async def test_a_flat_tick_with_nothing_to_decide_reads_no_mark(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:         # polling: no mark is pushed
            engine = agent.engine
            await ticks(engine, 1)      # the funding breaker's read (every 5 min) is done
            fake.clear_request_log()
            await ticks(engine, 5)
            assert fake.requests("GET /fapi/v3/positionRisk"), "the ticks ran, over REST"
            assert fake.requests(PREMIUM_INDEX) == [], "a flat tick read a mark it never used"
            assert SYMBOL not in engine.positions


async def test_a_signal_on_a_flat_symbol_is_planned_around_premium_indexs_mark(tmp_path):
    """Negative: an entry to plan still gets Binance's mark (read when the signal comes)."""
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            engine = agent.engine
            entries = engine.entries
            planned: list[SymbolView] = []

            async def enter_on_signal(symbol, signal, view, candles, account):  # type: ignore[no-untyped-def]
                planned.append(view)

            entries.enter_on_signal = enter_on_signal           # type: ignore[method-assign]
            entries.desk.would_ask = lambda symbol, history: True    # type: ignore[method-assign]
            entries.candle_signal = lambda symbol, history: Signal(  # type: ignore[method-assign]
                Side.BUY, 0.9, Decimal("0.01"), Decimal("0.005"))
            engine.entry_allowed = lambda symbol: True          # type: ignore[method-assign]
            assert engine.balance_keeper.balance is not None
            await ticks(engine, 1)      # the funding breaker's read (every 5 min) is done
            planned.clear()
            fake.reshape_answers(PREMIUM_INDEX, lambda answer: {**answer, "markPrice": str(MARK)})
            fake.clear_request_log()
            await ticks(engine, 1)
            [view] = planned
            assert view.mark == MARK and view.position.side is None
            assert len(fake.requests(PREMIUM_INDEX)) == 1
