"""Correlation-aware heat: open positions whose recent returns (in their direction)
correlate above TRADEBOT_CORRELATION_THRESHOLD are one bet with a new entry; together they
may risk one entry's budget (trader/correlation.py, trader/risk.py)."""

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.engine_world import settings_for
from tests.positions import make
from tests.test_risk import BTC, sizing
from trader.alerter import Alerter
from trader.clock import ManualClock
from trader.correlation import MIN_RETURNS, correlated_cluster, correlation, returns
from trader.domain import Candle, Side, Signal
from trader.engine import Engine
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig
from trader.risk import EntryPlan, Skip, plan_entry
from trader.trade_store import TradeStore

D = Decimal
START = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)


def series(symbol: str, moves: list[float], start: str = "100") -> list[Candle]:
    candles, close = [], D(start)
    for index, move in enumerate(moves):
        opened, close = close, (close * (1 + D(str(move)))).quantize(D("0.0001"))
        candles.append(Candle(symbol, START + STEP * index, STEP, opened, max(opened, close),
                              min(opened, close), close))
    return candles


def random_moves(seed: int, count: int = 120) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.gauss(0, 0.003), 6) for _ in range(count)]


COMMON = random_moves(1)
NOISE = random_moves(2)
CANDLES = {
    "BTCUSDT": series("BTCUSDT", COMMON),
    "ETHUSDT": series("ETHUSDT", [c + n / 5 for c, n in zip(COMMON, NOISE, strict=True)]),
    "XRPUSDT": series("XRPUSDT", random_moves(3)),
}


def test_returns_correlate_by_open_time() -> None:
    btc, eth = returns(CANDLES["BTCUSDT"], 100), returns(CANDLES["ETHUSDT"], 100)
    assert len(btc) == 100
    assert correlation(btc, btc) == pytest.approx(1.0)
    assert correlation(btc, eth) > 0.9
    assert abs(correlation(btc, returns(CANDLES["XRPUSDT"], 100))) < 0.3
    flat = returns(series("X", [0.0] * 50), 100)
    assert correlation(btc, flat) is None, "no variance: no verdict"
    assert correlation(returns(CANDLES["BTCUSDT"], MIN_RETURNS - 1), btc) is None


def open_position(symbol: str, side: Side = Side.BUY, stop: str = "99", **changes: Any):
    return make(symbol=symbol, side=side, entry="100", stop=stop,
                tp="102" if side is Side.BUY else "98", quantity="10", **changes)


def cluster(symbol: str, side: Side, *positions, threshold: str = "0.7"):
    return correlated_cluster(symbol, side, positions, CANDLES, D(threshold), 100)


def test_a_correlated_long_is_in_the_cluster_of_a_new_long() -> None:
    found = cluster("ETHUSDT", Side.BUY, open_position("BTCUSDT"))
    # (100 - 99 + 0.05 % x (100 + 99)) x 10: the loss at the stop with both taker fees
    assert found.symbols == ("BTCUSDT",) and found.risk == D("10.995")


def test_a_long_and_a_short_of_correlated_symbols_hedge_each_other() -> None:
    assert cluster("ETHUSDT", Side.SELL, open_position("BTCUSDT")).symbols == ()
    short_btc = open_position("BTCUSDT", Side.SELL, stop="101")
    assert cluster("ETHUSDT", Side.SELL, short_btc).symbols == ("BTCUSDT",)


def test_uncorrelated_positions_and_threshold_one_form_no_cluster() -> None:
    assert cluster("XRPUSDT", Side.BUY, open_position("BTCUSDT")).symbols == ()
    assert cluster("ETHUSDT", Side.BUY, open_position("BTCUSDT"), threshold="1").symbols == ()


def test_the_threshold_is_strict_and_links_chain() -> None:
    rho = correlation(returns(CANDLES["BTCUSDT"], 100), returns(CANDLES["ETHUSDT"], 100))
    assert cluster("ETHUSDT", Side.BUY, open_position("BTCUSDT"), threshold=str(rho)).symbols == ()
    # BTC is not correlated with XRP, but an XRP position correlated with BTC's ETH twin is
    # reached through ETH: single linkage.
    candles = {**CANDLES, "SOLUSDT": series("SOLUSDT", [c + n / 4 for c, n in
                                                        zip(COMMON, NOISE, strict=True)])}
    found = correlated_cluster("SOLUSDT", Side.BUY, [open_position("ETHUSDT"),
                                                     open_position("XRPUSDT")],
                               candles, D("0.7"), 100)
    assert found.symbols == ("ETHUSDT",)


def test_positions_past_breakeven_add_no_risk_to_the_cluster() -> None:
    safe = open_position("BTCUSDT", stop="100.5")
    found = cluster("ETHUSDT", Side.BUY, safe)
    assert found.symbols == ("BTCUSDT",) and found.risk == 0


# --- sizing at the edges ----------------------------------------------------------------

def test_an_entry_joining_a_cluster_gets_what_is_left_of_one_budget() -> None:
    alone = plan_entry(sizing())
    assert isinstance(alone, EntryPlan)
    budget = D("10000") * D("0.025")
    half = plan_entry(replace(sizing(), cluster_risk=budget / 2, cluster_with=("ETHUSDT",)))
    assert isinstance(half, EntryPlan)
    assert half.risk_amount <= budget / 2 < alone.risk_amount
    assert half.quantity == BTC.round_qty(alone.quantity / 2) or \
        half.quantity == BTC.round_qty(alone.quantity / 2) - BTC.step_size


@pytest.mark.parametrize("used", ["250", "300"])
def test_a_cluster_that_already_risks_one_budget_takes_no_entry(used: str) -> None:
    result = plan_entry(replace(sizing(), cluster_risk=D(used), cluster_with=("ETHUSDT",)))
    assert isinstance(result, Skip) and "correlated with the open ETHUSDT" in result.reason


def test_no_cluster_leaves_the_budget_alone() -> None:
    assert plan_entry(replace(sizing(), cluster_risk=D(0), cluster_with=())) == plan_entry(sizing())


# --- the engine -------------------------------------------------------------------------

@dataclass
class PerSymbolStrategy:
    """Emits `next[symbol]` once, on the next closed candle of that symbol."""
    name: str = "per-symbol"
    warmup: int = 25
    next: dict[str, Signal] = field(default_factory=dict)

    def signal(self, closed: Any) -> Signal | None:
        return self.next.pop(closed[-1].symbol, None)


PRICES = {"BTCUSDT": D("100000"), "ETHUSDT": D("3000"), "SOLUSDT": D("150"),
          "XRPUSDT": D("2")}


async def market(tmp_path: Path, symbols: list[str], **env: Any):
    settings = settings_for(tmp_path / "tradebot.db", TRADEBOT_SYMBOLS=",".join(symbols),
                            TRADEBOT_RISK_BASE="0.01", **env)
    clock = ManualClock(START)
    store = TradeStore.open(tmp_path / "tradebot.db")
    paper = PaperExchange(TradeStore.open(tmp_path / "exchange.db"), clock,
                          SimConfig(balance=D("10000"), seed=1, default_leverage=5))
    await paper.start(symbols, settings.leverage)
    strategy = PerSymbolStrategy()
    engine = Engine(settings, paper, store, clock, Alerter(store), strategy=strategy)
    return engine, paper, clock, strategy


async def run(engine, paper, clock, symbols: list[str], steps: range,
              scale: float = 1.0) -> None:
    """Candles for every symbol: BTC, ETH and SOL move together (one common factor plus a
    little noise), XRP on its own, each move x `scale`; then one engine tick."""
    common, noise, own = random_moves(11, 400), random_moves(12, 400), random_moves(13, 400)
    for index in steps:
        for symbol in symbols:
            move = scale * (own[index] if symbol == "XRPUSDT"
                            else common[index] + noise[index] / 5)
            opened = PRICES[symbol]
            close = paper.sim.rules_for(symbol).round_price(opened * (1 + D(str(move))),
                                                            up=False)
            PRICES[symbol] = close
            candle = Candle(symbol, START + STEP * index, STEP, opened,
                            max(opened, close) * D("1.001"), min(opened, close) * D("0.999"),
                            close, D("10"))
            paper.feed_candle(candle)
            engine.on_candle(candle)
        clock.set(START + STEP * (index + 1))
        await engine.tick()


def buy() -> Signal:
    return Signal(Side.BUY, 0.8, D("0.02"), D("0.01"), reason="test")


async def enter_in_turn(tmp_path: Path, symbols: list[str], **env: Any):
    """Warm up, then a long signal on each symbol, one candle after the other."""
    for symbol, price in (("BTCUSDT", "100000"), ("ETHUSDT", "3000"), ("SOLUSDT", "150"),
                          ("XRPUSDT", "2")):
        PRICES[symbol] = D(price)
    engine, paper, clock, strategy = await market(tmp_path, symbols, **env)
    await run(engine, paper, clock, symbols, range(60))
    budget = engine.equity() * D("0.01")
    for offset, symbol in enumerate(symbols):
        strategy.next[symbol] = buy()
        # quiet candles while entering: no position reaches its partial take-profit
        await run(engine, paper, clock, symbols, range(60 + offset, 61 + offset), scale=0.1)
    return engine, budget


def planned_risks(engine) -> dict[str, Decimal]:
    """Each open position's money at its initial stop (what sizing gave it)."""
    return {s: (p.entry_price - p.initial_stop_price) * p.initial_quantity
            for s, p in engine.positions.items()}


async def test_correlated_btc_eth_sol_longs_are_capped_at_one_entrys_risk(tmp_path) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    engine, budget = await enter_in_turn(tmp_path, symbols)
    risks = planned_risks(engine)
    assert risks["BTCUSDT"] > budget * D("0.8"), "the first of the cluster is sized in full"
    assert sum(risks.values()) <= budget, risks


async def test_without_correlation_awareness_each_long_takes_a_full_budget(tmp_path) -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    engine, budget = await enter_in_turn(tmp_path / "off", symbols,
                                         TRADEBOT_CORRELATION_THRESHOLD="1")
    risks = planned_risks(engine)
    assert set(risks) == set(symbols) and all(r > budget * D("0.8") for r in risks.values())


async def test_an_uncorrelated_long_keeps_its_full_budget(tmp_path) -> None:
    engine, budget = await enter_in_turn(tmp_path, ["BTCUSDT", "XRPUSDT"])
    risks = planned_risks(engine)
    assert set(risks) == {"BTCUSDT", "XRPUSDT"}
    assert all(r > budget * D("0.8") for r in risks.values()), risks
