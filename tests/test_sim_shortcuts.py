"""The simulator's shortcuts change nothing but the time taken: a candle whose range no order
and no liquidation can reach skips its path walk; the liquidation level, the book and the
position report are kept until what they come from changes; a candle ending before the next
funding moment skips the funding arithmetic. A simulator with every shortcut off runs the
same scripts to the same events, fills and state, digit for digit (Decimal reprs, not only
values)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trader.domain import (
    BookTicker,
    Candle,
    ExchangePosition,
    OrderRequest,
    OrderRole,
    OrderType,
    Side,
)
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimConfig, Simulator, rules_for
from trader.exchange.sim_book import FundingBook
from trader.exchange.sim_ledger import SimPosition, unrealized_pnl
from trader.exchange.sim_path import book_at, funding_times, to_tick
from trader.exchange.sim_rules import maintenance_rate, spread_for

T0 = datetime(2024, 1, 1, 7, 40, tzinfo=UTC)
BTC = "BTCUSDT"


class FundingFromScratch(FundingBook):
    """Due funding moments found anew on every candle."""

    def due(self, symbol: str, after: datetime, until: datetime) -> list[datetime]:
        paid = self.funded_until.get(symbol)
        start = max(after, paid) if paid is not None else after
        self.funded_until[symbol] = max(until, paid) if paid is not None else until
        return funding_times(start, until)


class EveryStepSimulator(Simulator):
    """The matching rules with no shortcut: walks every candle's whole path, computes the
    liquidation level, the book and the position report anew each time, finds due funding
    from scratch."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.funding = FundingFromScratch(config.funding_rate)

    def _quiet_candle(self, candle: Candle) -> bool:
        return False

    def _liquidation_level(self, symbol: str, held: SimPosition) -> D | None:
        liquidation = self.ledger.liquidation_price(symbol, maintenance_rate(symbol))
        if liquidation is None:
            return None
        return to_tick(liquidation, self.rules_for(symbol).tick_size, up=held.sign > 0)

    def position(self, symbol: str) -> ExchangePosition:
        held, mark = self.ledger.position(symbol), self.prices.get(symbol, D(0))
        return ExchangePosition(symbol, held.quantity, held.entry_price, mark,
                                unrealized_pnl(held, mark), self.ledger.leverage(symbol))

    def book(self, symbol: str) -> BookTicker:
        return book_at(symbol, self.mark_price(symbol), spread_for(symbol, self.config.spread),
                       self.rules_for(symbol).tick_size)


def on_tick(price: D) -> D:
    return rules_for(BTC).round_price(price, up=False)


def run_action(sim: Simulator, action: tuple, now: datetime, n: int) -> list:
    kind, mark = action[0], sim.mark_price(BTC)
    if kind == "market":
        _, side, steps, reduce_only = action
        request = OrderRequest(BTC, side, OrderType.MARKET, D("0.001") * steps, f"m{n}",
                               OrderRole.ENTRY, reduce_only=reduce_only)
    elif kind == "limit":
        _, side, steps, move = action
        request = OrderRequest(BTC, side, OrderType.LIMIT, D("0.001") * steps, f"l{n}",
                               OrderRole.ENTRY, price=on_tick(mark * (1 + move)))
    elif kind == "conditional":
        _, order_type, side, move, close_position = action
        role = OrderRole.STOP_LOSS if order_type is OrderType.STOP_MARKET \
            else OrderRole.TAKE_PROFIT
        request = OrderRequest(BTC, side, order_type, D(0) if close_position else D("0.01"),
                               f"c{n}", role, trigger_price=on_tick(mark * (1 + move)),
                               reduce_only=not close_position, close_position=close_position)
    elif kind == "price":
        return sim.set_price(BTC, on_tick(mark * (1 + action[1])), now, gap=action[2])
    elif kind == "cancel":
        live = sim.open_orders(BTC)
        return sim.cancel(BTC, live[action[1] % len(live)].client_id, now)[1] if live else []
    elif kind == "funding":
        sim.set_funding_rate(BTC, action[1])
        return []
    else:
        sim.set_leverage(BTC, action[1])
        return []
    return sim.place(request, now)[1]


def run_candle(sim: Simulator, moves: tuple[D, D, D, D], at: datetime,
               interval: timedelta) -> list:
    mark = sim.mark_price(BTC)
    o, a, b, c = (on_tick(mark * (1 + move)) for move in moves)
    return sim.on_candle(Candle(BTC, at, interval, o, max(o, a, b, c), min(o, a, b, c), c))


moves = st.decimals(min_value=D("-0.03"), max_value=D("0.03"), places=4)
near = st.decimals(min_value=D("-0.003"), max_value=D("0.003"), places=4)
sides = st.sampled_from([Side.BUY, Side.SELL])
actions = st.one_of(
    st.none(),
    st.tuples(st.just("market"), sides, st.integers(1, 40), st.booleans()),
    st.tuples(st.just("limit"), sides, st.integers(1, 40), moves),
    st.tuples(st.just("conditional"),
              st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]), sides,
              moves, st.booleans()),
    st.tuples(st.just("price"), moves, st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("funding"), st.decimals(min_value=D("-0.001"), max_value=D("0.001"),
                                              places=5)),
    st.tuples(st.just("leverage"), st.sampled_from([5, 20, 50, 100, 125])),
)
# quiet candles (small moves) and reaching ones; on a 5-minute grid from 07:40 UTC, 5m to
# 8h long, so that many end exactly at a funding time (08:00, 16:00) or span one
candles = st.tuples(st.one_of(st.tuples(near, near, near, near), st.tuples(moves, moves, moves, moves)),
                    st.sampled_from([5, 15, 60, 480]), st.integers(0, 12))


def outcome(sim: Simulator, step: tuple, now: datetime, n: int) -> str:
    """Everything one step (an action, then a candle) changed, as text: the events and
    errors, what the exchange's reads answer, and the whole state."""
    action, (prices, minutes, _) = step
    try:
        events = repr(run_action(sim, action, now, n)) if action is not None else ""
    except ExchangeError as error:
        events = f"error {error.code} {error.message}"
    events += repr(run_candle(sim, prices, now, timedelta(minutes=minutes)))
    views = (sim.book(BTC), sim.balance(), sim.position(BTC), sim.open_orders(BTC))
    return "\n".join([events, repr(views), json.dumps(sim.to_state(), sort_keys=True)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(actions, candles), min_size=1, max_size=30))
def test_the_shortcuts_give_what_walking_every_step_gives(script: list[tuple]) -> None:
    config = SimConfig(balance=D("2000"))
    fast, slow = Simulator(config), EveryStepSimulator(config)
    now = T0
    for sim in (fast, slow):
        sim.set_price(BTC, D("70000"), now)
    for n, step in enumerate(script):
        assert outcome(fast, step, now, n) == outcome(slow, step, now, n)
        _, (_, minutes, pause) = step
        now += timedelta(minutes=minutes + 5 * pause)


def test_a_candle_out_of_every_order_reach_is_not_walked(monkeypatch) -> None:   # type: ignore[no-untyped-def]
    """The shortcut is taken: a candle moving between a stop and a take-profit, far from
    the liquidation, only moves the price (no sweep along its path)."""
    sim = Simulator(SimConfig(spread={BTC: D(0)}, slippage=D(0)))
    sim.set_price(BTC, D("70000"), T0)
    sim.place(OrderRequest(BTC, Side.BUY, OrderType.MARKET, D("0.01"), "entry",
                           OrderRole.ENTRY), T0)
    sim.place(OrderRequest(BTC, Side.SELL, OrderType.STOP_MARKET, D(0), "sl",
                           OrderRole.STOP_LOSS, trigger_price=D("69000"), close_position=True), T0)
    sim.place(OrderRequest(BTC, Side.SELL, OrderType.TAKE_PROFIT_MARKET, D(0), "tp",
                           OrderRole.TAKE_PROFIT, trigger_price=D("71000"),
                           close_position=True), T0)
    sweeps: list[tuple] = []
    original = Simulator._sweep

    def counted(self: Simulator, *args: object, **kwargs: object) -> list:
        sweeps.append(args)
        return original(self, *args, **kwargs)   # type: ignore[arg-type]

    monkeypatch.setattr(Simulator, "_sweep", counted)
    quiet = Candle(BTC, T0, timedelta(minutes=5), D("70000"), D("70900"), D("69100"),
                   D("70500"))
    assert sim.on_candle(quiet) == [] and sweeps == []
    assert sim.mark_price(BTC) == D("70500") and len(sim.open_orders(BTC)) == 2
    reaching = Candle(BTC, T0 + timedelta(minutes=5), timedelta(minutes=5), D("70500"),
                      D("71200"), D("70400"), D("71100"))
    assert sim.on_candle(reaching) and sweeps   # the take-profit fills: the path is walked
    assert sim.position(BTC).quantity == 0
