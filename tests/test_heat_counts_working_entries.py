"""Portfolio heat and the correlated cluster count what may still fill: an entry that is
ENTERING (a maker quote resting, a market entry whose answer was lost) at its planned size
and stop, and the working rest of a partly filled quote. They counted for nothing, so BTC
and ETH breakouts on one candle each got a full risk budget (issue 15: "open risk of
positions whose recent returns correlate above a threshold counts as one cluster against
TRADEBOT_MAX_HEAT"). An entry that is over (refused, expired, given up) and a closed
position count nothing; a market entry's heat is as it was."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.positions import make
from tests.test_rules_correlation import PRICES, buy, cluster, market, open_position, run
from trader.domain import OrderRequest, OrderRole, Side
from trader.exchange.base import ExchangeError, UnknownOutcome
from trader.position import PositionState
from trader.risk import total_open_risk

D = Decimal
MAKER = {"TRADEBOT_ENTRY_MODE": "maker", "TRADEBOT_MAKER_TIMEOUT_SECONDS": 30}
STEP = timedelta(seconds=5)


async def warmed(tmp_path, symbols: list[str], **env: Any):
    for symbol, price in (("BTCUSDT", "100000"), ("ETHUSDT", "3000"), ("SOLUSDT", "150"),
                          ("XRPUSDT", "2")):
        PRICES[symbol] = D(price)
    engine, paper, clock, strategy = await market(tmp_path, symbols, **env)
    await run(engine, paper, clock, symbols, range(60))
    return engine, paper, clock, strategy, engine.equity() * D("0.01")


async def longs_on_one_candle(engine, paper, clock, strategy, symbols: list[str]) -> None:
    for symbol in symbols:
        strategy.next[symbol] = buy()
    await run(engine, paper, clock, symbols, range(60, 61), scale=0.1)


def planned_risks(engine) -> dict[str, Decimal]:
    """Each position's money at its planned stop for its planned size (what sizing gave)."""
    return {s: (p.entry_price - p.initial_stop_price) * p.initial_quantity
            for s, p in engine.positions.items()}


def first_entry_answers(paper, answer: Exception, lands: bool = False) -> None:
    """The first entry order's request ends in `answer` (placed first when `lands`); with
    an UnknownOutcome every probe of it by client id fails the same way after."""
    real_place, real_probe = paper.place, paper.order_by_client_id
    lost: set[str] = set()

    async def place(request: OrderRequest):  # type: ignore[no-untyped-def]
        if request.role is not OrderRole.ENTRY or lost:
            return await real_place(request)
        lost.add(request.client_id)
        if lands:
            await real_place(request)
        raise answer

    async def probe(symbol: str, client_id: str):  # type: ignore[no-untyped-def]
        if client_id in lost and isinstance(answer, UnknownOutcome):
            raise UnknownOutcome("query order: timeout (test)")
        return await real_probe(symbol, client_id)

    paper.place, paper.order_by_client_id = place, probe


# --- what may fill counts ------------------------------------------------------------------

async def test_resting_maker_quotes_of_correlated_longs_share_one_budget(tmp_path):
    engine, paper, clock, strategy, budget = await warmed(
        tmp_path, ["BTCUSDT", "ETHUSDT"], **MAKER)
    await longs_on_one_candle(engine, paper, clock, strategy, ["BTCUSDT", "ETHUSDT"])
    risks = planned_risks(engine)
    assert max(risks.values()) > budget * D("0.8"), "the first quote is sized in full"
    assert sum(risks.values()) <= budget * D("1.01"), (risks, budget)


async def test_resting_maker_quotes_respect_the_heat_cap(tmp_path):
    """Uncorrelated (correlation off): 1.5 % heat with 1 % per entry leaves the second
    quote half a budget at most, whatever filled yet."""
    engine, paper, clock, strategy, budget = await warmed(
        tmp_path, ["BTCUSDT", "XRPUSDT"], **MAKER, TRADEBOT_MAX_HEAT="0.015",
        TRADEBOT_CORRELATION_THRESHOLD="1")
    await longs_on_one_candle(engine, paper, clock, strategy, ["BTCUSDT", "XRPUSDT"])
    risks = planned_risks(engine)
    assert sum(risks.values()) <= budget * D("1.5") * D("1.01"), (risks, budget)


async def test_a_market_entry_whose_answer_was_lost_counts_against_the_budget(tmp_path):
    """The first entry's request times out and cannot be probed: it stays ENTERING (it may
    have filled), and the correlated second entry gets only what is left of one budget."""
    engine, paper, clock, strategy, budget = await warmed(tmp_path, ["BTCUSDT", "ETHUSDT"])
    first_entry_answers(paper, UnknownOutcome("place: timeout (test)"))
    await longs_on_one_candle(engine, paper, clock, strategy, ["BTCUSDT", "ETHUSDT"])
    states = {s: p.state for s, p in engine.positions.items()}
    assert PositionState.ENTERING in states.values(), states
    risks = planned_risks(engine)
    assert max(risks.values()) > budget * D("0.8"), "the lost entry was sized in full"
    # (what is left, with both legs' fees, is below ETH's minimum quantity: no entry)
    assert sum(risks.values()) <= budget * D("1.01"), (risks, budget)


async def test_the_working_rest_of_a_partly_filled_quote_counts_until_it_is_given_up(tmp_path):
    """40 % of the quote filled, the rest still quoted: the heat counts the planned size.
    Given up at the timeout (TRADEBOT_MAKER_FALLBACK=cancel): only what filled counts."""
    engine, paper, clock, strategy, _ = await warmed(
        tmp_path, ["BTCUSDT"], **MAKER, TRADEBOT_MAKER_FALLBACK="cancel")
    strategy.next["BTCUSDT"] = buy()
    await run(engine, paper, clock, ["BTCUSDT"], range(60, 61), scale=0.1)
    planned = engine.positions["BTCUSDT"]
    assert planned.state is PositionState.ENTERING
    full = (planned.entry_price - planned.stop.trigger_price) * planned.quantity
    [quote] = [o for o in await paper.open_orders("BTCUSDT") if o.role is OrderRole.ENTRY]
    part = paper.rules("BTCUSDT").round_qty(planned.quantity * D("0.4"))
    paper.publish(paper.sim.fill_partly("BTCUSDT", quote.client_id, part, clock.now()))
    clock.set(clock.now() + STEP)
    await engine.tick()
    held = engine.positions["BTCUSDT"]
    assert held.state.open and held.quantity == part
    account = engine.entries.account(engine.balance, engine.positions.values())
    assert account is not None
    # at its stop for the planned size, from the price the first part filled at
    assert account.open_risk == (held.entry_price - held.stop.trigger_price) * planned.quantity
    assert account.open_risk > full * D("0.99"), "the rest may fill any moment: counted"
    [counted] = account.positions
    assert counted.quantity == planned.quantity, "the correlation counts it whole too"

    for _ in range(7):                      # past the 30 s timeout: the rest is given up
        clock.set(clock.now() + STEP)
        await engine.tick()
    assert [o for o in await paper.open_orders("BTCUSDT") if o.role is OrderRole.ENTRY] == []
    held = engine.positions["BTCUSDT"]
    account = engine.entries.account(engine.balance, engine.positions.values())
    assert account is not None and account.open_risk == held.risk_amount() < full
    assert [p.quantity for p in account.positions] == [part]


# --- what cannot fill counts nothing (negative) ----------------------------------------------

async def test_a_refused_entry_leaves_the_next_one_a_full_budget(tmp_path):
    """The first entry is refused (-2019): it is over, so the correlated second one is
    sized in full, as if the first had never been sent."""
    engine, paper, clock, strategy, budget = await warmed(tmp_path, ["BTCUSDT", "ETHUSDT"])
    first_entry_answers(paper, ExchangeError(-2019, "Margin is insufficient."))
    await longs_on_one_candle(engine, paper, clock, strategy, ["BTCUSDT", "ETHUSDT"])
    [(symbol, position)] = engine.positions.items()
    assert position.state.open
    assert planned_risks(engine)[symbol] > budget * D("0.8")


async def test_an_expired_maker_entry_leaves_the_next_one_a_full_budget(tmp_path):
    """The quote never filled and was given up (fallback cancel): nothing counts then."""
    engine, paper, clock, strategy, budget = await warmed(
        tmp_path, ["BTCUSDT", "ETHUSDT"],
        **{**MAKER, "TRADEBOT_MAKER_FALLBACK": "cancel", "TRADEBOT_MAKER_TIMEOUT_SECONDS": 1})
    strategy.next["BTCUSDT"] = buy()
    await run(engine, paper, clock, ["BTCUSDT", "ETHUSDT"], range(60, 61), scale=0.1)
    assert engine.positions["BTCUSDT"].state is PositionState.ENTERING
    for _ in range(3):                # no candle: the quote rests past its timeout, unfilled
        clock.set(clock.now() + STEP)
        await engine.tick()
    assert "BTCUSDT" not in engine.positions
    account = engine.entries.account(engine.balance, engine.positions.values())
    assert account is not None and account.open_risk == 0 and account.positions == ()
    strategy.next["ETHUSDT"] = buy()
    await run(engine, paper, clock, ["BTCUSDT", "ETHUSDT"], range(61, 62), scale=0.1)
    assert planned_risks(engine)["ETHUSDT"] > budget * D("0.8")


async def test_market_entries_on_one_candle_share_one_budget_as_before(tmp_path):
    """Market mode: the first entry fills at once and is sized in full; the correlated
    second gets what is left (unchanged by counting entries that may fill)."""
    engine, paper, clock, strategy, budget = await warmed(tmp_path, ["BTCUSDT", "ETHUSDT"])
    await longs_on_one_candle(engine, paper, clock, strategy, ["BTCUSDT", "ETHUSDT"])
    risks = planned_risks(engine)
    assert all(p.state.open for p in engine.positions.values())
    assert max(risks.values()) > budget * D("0.8")
    assert sum(risks.values()) <= budget * D("1.01"), (risks, budget)


def test_a_closed_position_counts_nothing_and_an_open_one_what_it_holds() -> None:
    """CLOSED counts nothing; an open position counts its quantity now (after a partial
    take-profit: less than planned), at its stop."""
    closed = make(key="c", state=PositionState.CLOSED)
    reduced = make(key="r", quantity="0.05", initial_quantity=D("0.1"))
    assert total_open_risk([closed, reduced]) == D("25")


def test_an_entering_position_is_in_the_cluster_at_its_planned_size() -> None:
    """The correlation sees an ENTERING long as the open one it may become; a CLOSED one
    (refused, expired) is in no cluster."""
    entering = open_position("BTCUSDT", state=PositionState.ENTERING)
    assert cluster("ETHUSDT", Side.BUY, entering) == cluster("ETHUSDT", Side.BUY,
                                                             open_position("BTCUSDT"))
    assert cluster("ETHUSDT", Side.BUY, entering).risk == D("10.995")
    gone = open_position("BTCUSDT", state=PositionState.CLOSED)
    assert cluster("ETHUSDT", Side.BUY, gone).symbols == ()
