"""MARKET orders are held to exchangeInfo's MARKET_LOT_SIZE, "the quantity rules for MARKET
orders on a symbol" (https://developers.binance.com/docs/derivatives/usds-margined-futures/
common-definition, Filters), conditional ones to LOT_SIZE. Binance's documented example
(.../market-data/rest-api/Exchange-Information) has LOT_SIZE maxQty 10000000 but
MARKET_LOT_SIZE maxQty 590119; a MARKET order above it is refused -4005
QTY_GREATER_THAN_MAX_QTY (.../error-code).

The agent read LOT_SIZE only: with MARKET_LOT_SIZE maxQty 0.3 it sent a MARKET entry of
0.507, was refused, re-read the same rules and was refused again; a /close (time exit,
flatten) of a position above 0.3 was refused three times and left open. Now an entry is
capped at the largest market order (and the reply says so) and a market close is sent in
parts, each reduce-only with its own journaled client id.

Found from outside (review 7, item 5)."""

from dataclasses import replace
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_harness import market, started_exchange, stop_loss
from tests.fakes.binance_server import FakeBinance
from tests.fixtures.binance import payload
from tests.positions import KEY, leg_id, make
from tests.stream_ahead import a_world
from tests.test_first_command_after_boot import SYMBOL, booted, market_up_to_now
from trader.commands import CommandKind
from trader.domain import ClientId, CloseReason, OrderRole, OrderType, Side
from trader.events import Flatten, FlattenResult, PositionGone
from trader.evolve import evolve
from trader.exchange import binance_codec as codec
from trader.exchange.binance_requests import algo_params, order_params
from trader.exchange_actions import ActionRunner
from trader.intents import part_client_id
from trader.position import PositionState
from trader.symbol_rules import SymbolRules

D = Decimal
MARKET_MAX = D("0.3")
BTC = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                  min_notional=D("100"), max_qty=D("1000"))


def market_limited(fake: FakeBinance, largest: Decimal = MARKET_MAX) -> None:
    """The fake's BTCUSDT takes MARKET orders up to `largest` only (and says so in
    exchangeInfo's MARKET_LOT_SIZE); LOT_SIZE stays 1000."""
    fake.sim.set_rules(replace(fake.sim.rules_for(SYMBOL), market_max_qty=largest))


def market_orders(fake: FakeBinance) -> list[dict[str, str]]:
    return [r.params for r in fake.requests("POST /fapi/v1/order")
            if r.params.get("type") == "MARKET"]


# --- the filter as documented ---------------------------------------------------------------

def test_the_documented_exchange_info_gives_the_market_lot_size_apart():
    [rules] = codec.rules_from_exchange_info(payload("exchange_info"), ["BLZUSDT"]).values()
    assert (rules.max_qty, rules.market_max_qty) == (D("10000000"), D("590119"))
    assert (rules.market_min_qty, rules.market_step_size) == (D("1"), D("1"))
    assert rules.largest_market_qty == D("590119")


def test_without_a_market_lot_size_market_orders_keep_lot_sizes_rules():
    info = payload("exchange_info")
    info["symbols"][0]["filters"] = [f for f in info["symbols"][0]["filters"]
                                     if f["filterType"] != "MARKET_LOT_SIZE"]
    [rules] = codec.rules_from_exchange_info(info, ["BLZUSDT"]).values()
    assert rules.market_max_qty == 0 and rules.largest_market_qty == D("10000000")
    assert rules.market_parts(D("20000000")) == [D("10000000"), D("10000000")]


@pytest.mark.parametrize(("quantity", "parts"), [
    ("0.3", ["0.3"]),                         # within: one order, as before
    ("0.2", ["0.2"]),
    ("0.7", ["0.3", "0.3", "0.1"]),
    ("0.6", ["0.3", "0.3"]),
    ("0.601", ["0.3", "0.3", "0.001"]),
])
def test_a_market_close_above_the_largest_market_order_goes_in_parts(quantity, parts):
    rules = replace(BTC, market_max_qty=MARKET_MAX)
    assert rules.market_parts(D(quantity)) == [D(p) for p in parts]
    assert sum(rules.market_parts(D(quantity))) == D(quantity)


def test_a_rest_below_the_market_minimum_takes_what_it_lacks_from_the_part_before():
    rules = replace(BTC, market_max_qty=MARKET_MAX, market_min_qty=D("0.01"))
    assert rules.market_parts(D("0.605")) == [D("0.3"), D("0.295"), D("0.01")]


def test_symbols_whose_two_filters_agree_send_one_market_order_as_before():
    agreeing = replace(BTC, market_max_qty=BTC.max_qty, market_min_qty=BTC.min_qty,
                       market_step_size=BTC.step_size)
    for rules in (BTC, agreeing):
        assert rules.largest_market_qty == D("1000")
        assert rules.market_parts(D("0.507")) == [D("0.507")]


def test_the_parts_of_a_close_have_ids_of_their_own_that_no_later_close_takes():
    close = str(ClientId(SYMBOL, "key", OrderRole.FLATTEN, 2))
    ids = [part_client_id(close, n) for n in range(3)]
    assert ids[0] == close and len(set(ids)) == 3
    parsed = [ClientId.parse(i) for i in ids]
    assert all(p is not None and p.role is OrderRole.FLATTEN and p.position_key == "key"
               for p in parsed)
    assert [p.seq for p in parsed if p] == [2, 1002, 2002]
    with pytest.raises(ValueError):
        part_client_id("somebody-elses-id", 1)


async def test_the_fake_refuses_a_market_order_above_market_lot_size_as_documented():
    """-4005 for the MARKET order; a STOP_MARKET of the same size is held to LOT_SIZE."""
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake, \
            started_exchange(fake) as exchange:
        market_limited(fake)
        client = exchange.client
        info = await client.futures_exchange_info()
        [symbol] = [s for s in info["symbols"] if s["symbol"] == SYMBOL]
        lots = {f["filterType"]: f["maxQty"] for f in symbol["filters"] if "maxQty" in f}
        assert lots == {"LOT_SIZE": "1000", "MARKET_LOT_SIZE": "0.3"}
        with pytest.raises(BinanceAPIException) as refused:
            await client.futures_create_order(**order_params(market(Side.BUY, "0.5")))
        assert (refused.value.code, refused.value.message) == (
            -4005, "Quantity greater than max quantity.")
        await client.futures_create_order(**order_params(market(Side.BUY, "0.3")))
        await client.futures_create_algo_order(**algo_params(
            stop_loss(Side.SELL, "49000", "0.5", close_position=False)))


# --- the agent ----------------------------------------------------------------------------

async def test_an_entry_is_capped_at_the_largest_market_order_and_says_so(tmp_path):
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        market_limited(fake)
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            result = await agent.run(CommandKind.LONG)
            assert result.ok, result.lines
            assert [q["quantity"] for q in market_orders(fake)] == ["0.3"]
            assert fake.sim.position(SYMBOL).quantity == MARKET_MAX
            assert ("(capped: 0.3 is the largest market order Binance takes on BTCUSDT, "
                    "MARKET_LOT_SIZE)") in result.lines[0], result.lines
            stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
            assert [o.quantity for o in stops] == [MARKET_MAX]


async def test_an_entry_where_the_filters_agree_is_sized_as_before(tmp_path):
    """Negative case: the default fake's MARKET_LOT_SIZE is LOT_SIZE's."""
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            result = await agent.run(CommandKind.LONG)
            assert result.ok, result.lines
            assert [q["quantity"] for q in market_orders(fake)] == ["0.507"]
            assert "capped" not in result.lines[0]


async def test_a_close_above_the_largest_market_order_closes_in_parts(tmp_path):
    """A LONG 0.7 (opened by hand, adopted) closed by /close: three reduce-only MARKET
    orders 0.3, 0.3, 0.1, each journaled as an intent with its own client id; flat, one
    close recorded. It was refused three times (-4005) and left open."""
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        await market_up_to_now(fake)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, D("0.7"))
        market_limited(fake)
        async with booted(fake, tmp_path) as agent:
            engine = agent.engine
            await engine.tick()
            assert engine.positions[SYMBOL].quantity == D("0.7")
            fake.clear_request_log()

            result = await agent.run(CommandKind.CLOSE)

            sent = market_orders(fake)
            assert fake.sim.position(SYMBOL).quantity == 0, (result.lines, sent)
            assert [q["quantity"] for q in sent] == ["0.3", "0.3", "0.1"]
            assert all(q["reduceOnly"] == "true" and q["side"] == "SELL" for q in sent)
            ids = [q["newClientOrderId"] for q in sent]
            assert len(set(ids)) == 3
            journaled = [engine.store.intent(i) for i in ids]
            assert all(i is not None and i.reduce_only and i.type is OrderType.MARKET
                       for i in journaled), journaled
            assert SYMBOL not in engine.positions
            assert len(engine.store.closed_positions()) == 1


async def test_a_close_within_the_largest_market_order_is_one_order_as_before(tmp_path):
    """Negative case: a LONG 0.2 with the same filter: one MARKET order under the close's
    own id."""
    async with FakeBinance(prices={SYMBOL: D("50000")}) as fake:
        await market_up_to_now(fake)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, D("0.2"))
        market_limited(fake)
        async with booted(fake, tmp_path) as agent:
            await agent.engine.tick()
            fake.clear_request_log()
            await agent.run(CommandKind.CLOSE)
            sent = market_orders(fake)
            assert [q["quantity"] for q in sent] == ["0.2"]
            parsed = ClientId.parse(sent[0]["newClientOrderId"])
            assert parsed is not None and parsed.seq < 1000
            assert fake.sim.position(SYMBOL).quantity == 0


async def test_a_part_whose_answer_was_lost_is_probed_and_the_rest_closed_after(tmp_path):
    """The second of three parts answered 503 (it landed): the rest waits for its probe,
    nothing is sent blind; the next close finds it filled and sends what is left."""
    async with a_world(tmp_path, long=D("0.7")) as world:
        market_limited(world.fake)
        await world.exchange.refresh_rules()
        opened = await world.exchange.position(SYMBOL)
        position = make(SYMBOL, Side.BUY, PositionState.CLOSING, D("0.7"), opened.entry_price,
                        "49000", "51000")
        runner = ActionRunner(world.exchange, world.executor, world.tracker, world.clock)
        first = leg_id(SYMBOL, OrderRole.FLATTEN, 1, key=KEY)
        lost = part_client_id(first, 1)
        world.fake.inject_fault("POST /fapi/v1/order", code=-1000, http_status=503,
                                execute=True, only={"newClientOrderId": lost})

        sent = await runner.flatten(position, Flatten(CloseReason.MANUAL, D("0.7"), first))

        assert sent.events == [FlattenResult(D("0.1"), in_flight=lost)], sent.events
        assert [q["quantity"] for q in market_orders(world.fake)] == ["0.3", "0.3"]
        rest = evolve(position, quantity=D("0.1"))
        done = await runner.flatten(rest, Flatten(CloseReason.MANUAL, D("0.1"),
                                                  leg_id(SYMBOL, OrderRole.FLATTEN, 2, key=KEY)))
        assert done.events == [FlattenResult(D(0)), PositionGone()], done.events
        assert any(r.params.get("origClientOrderId") == lost
                   for r in world.fake.requests("GET /fapi/v1/order")), "not probed"
        assert [q["quantity"] for q in market_orders(world.fake)] == ["0.3", "0.3", "0.1"]
        assert world.fake.sim.position(SYMBOL).quantity == 0
