"""Domain values: deterministic client ids, exchange-filter rounding and formatting (positions: tests/test_position.py)."""

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trader.domain import (
    ClientId,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    plain,
    position_key,
)
from trader.symbol_rules import SymbolRules

BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d*[1-9])?$")
OPENED_AT = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
TICKS = [Decimal(t) for t in ("0.1", "0.01", "0.10", "0.0001", "0.0000001", "0.5", "1", "10")]
STEPS = [Decimal(s) for s in ("0.001", "0.1", "1", "10", "0.00001", "0.010")]

symbols = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12).map(
    lambda base: base + "USDT")
moments = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))
prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("10000000"),
                     allow_nan=False, allow_infinity=False, places=10)


def rules(tick: Decimal = Decimal("0.10"), step: Decimal = Decimal("0.001")) -> SymbolRules:
    return SymbolRules("BTCUSDT", tick_size=tick, step_size=step, min_qty=step,
                       min_notional=Decimal("100"))


# --- client ids -----------------------------------------------------------------------

@given(symbol=symbols, opened_at=moments, role=st.sampled_from(OrderRole),
       seq=st.integers(min_value=1, max_value=10**6))
def test_client_id_round_trips_through_its_text(symbol: str, opened_at: datetime,
                                                role: OrderRole, seq: int) -> None:
    client_id = ClientId(symbol, position_key(opened_at), role, seq)
    assert ClientId.parse(str(client_id)) == client_id


@given(symbol=symbols, opened_at=moments, role=st.sampled_from(OrderRole),
       seq=st.integers(min_value=1, max_value=9999))
def test_client_id_fits_binance_length_and_alphabet(symbol: str, opened_at: datetime,
                                                    role: OrderRole, seq: int) -> None:
    """Symbols up to the 16 characters Settings accepts, keys until 2100, 4-digit seqs."""
    text = str(ClientId(symbol, position_key(opened_at), role, seq))
    assert BINANCE_CLIENT_ID.match(text), text


def test_client_id_for_long_symbol_and_big_sequence_stays_within_36_chars() -> None:
    far_future_key = position_key(datetime(2100, 1, 1, tzinfo=UTC))
    text = str(ClientId("1000SHIBUSDT", far_future_key, OrderRole.PARTIAL_TP, 10**6))
    assert len(text) <= 36
    assert BINANCE_CLIENT_ID.match(text)


def test_client_id_encodes_role_and_sequence_readably() -> None:
    key = position_key(OPENED_AT)
    assert str(ClientId("BTCUSDT", key, OrderRole.STOP_LOSS, 2)) == f"tb-BTCUSDT-{key}-sl2"


@pytest.mark.parametrize("foreign", [
    "", "web_6f2c1a", "x-AKJ13jda", "tb", "tb-BTCUSDT", "tb-BTCUSDT-abc",
    "tb-BTCUSDT-abc-sl", "tb-BTCUSDT-abc-xx1", "tb-BTCUSDT-abc-sl-1",
    "tb-BTCUSDT-abc-slx", "ab-BTCUSDT-abc-sl1", "TB-BTCUSDT-abc-sl1",
    "tb-BTCUSDT-abc-sl+1", "tb-BTCUSDT-abc-sl 1", "tb-BTCUSDT-abc-sl01",
    "tb-BTCUSDT-abc-sl\u0663", "tb--abc-sl1", "tb-BTCUSDT--sl1",
])
def test_foreign_client_ids_parse_to_none(foreign: str) -> None:
    """Only ids this agent could have produced are claimed (anything else is not adopted)."""
    assert ClientId.parse(foreign) is None


def test_order_role_comes_from_its_client_id() -> None:
    key = position_key(OPENED_AT)
    ours = Order("BTCUSDT", f"tb-BTCUSDT-{key}-tp3", Side.SELL, OrderType.TAKE_PROFIT_MARKET,
                 OrderStatus.NEW, Decimal("1"))
    manual = Order("BTCUSDT", "android_abc", Side.SELL, OrderType.LIMIT, OrderStatus.NEW,
                   Decimal("1"))
    assert ours.role is OrderRole.TAKE_PROFIT
    assert manual.role is None


@given(opened_at=moments)
def test_position_key_is_deterministic_lowercase_base36(opened_at: datetime) -> None:
    key = position_key(opened_at)
    assert key == position_key(opened_at)
    assert re.fullmatch(r"[0-9a-z]{1,7}", key)
    assert int(key, 36) == int(opened_at.timestamp())


# --- symbol rules ---------------------------------------------------------------------

@pytest.mark.parametrize(("qty", "step", "expected"), [
    ("0.0019", "0.001", "0.001"),
    ("1.23456", "0.001", "1.234"),
    ("5", "0.001", "5"),
    ("99.9", "1", "99"),
    ("0.0009", "0.001", "0"),
    ("123", "10", "120"),
])
def test_round_qty_goes_down_to_the_step(qty: str, step: str, expected: str) -> None:
    assert rules(step=Decimal(step)).round_qty(Decimal(qty)) == Decimal(expected)


@pytest.mark.parametrize(("price", "tick", "up", "expected"), [
    ("100.05", "0.10", True, "100.1"),
    ("100.05", "0.10", False, "100.0"),
    ("100.00", "0.10", True, "100"),
    ("100.00", "0.10", False, "100"),
    ("0.123456", "0.0001", True, "0.1235"),
    ("0.123456", "0.0001", False, "0.1234"),
    ("12345.67", "10", True, "12350"),
    ("12345.67", "0.5", False, "12345.5"),
])
def test_round_price_goes_up_or_down_to_the_tick(price: str, tick: str, up: bool,
                                                 expected: str) -> None:
    assert rules(tick=Decimal(tick)).round_price(Decimal(price), up=up) == Decimal(expected)


@given(price=prices, tick=st.sampled_from(TICKS), up=st.booleans())
def test_rounded_price_is_on_the_tick_grid_and_on_the_asked_side(
        price: Decimal, tick: Decimal, up: bool) -> None:
    rounded = rules(tick=tick).round_price(price, up=up)
    assert rounded % tick == 0
    assert abs(rounded - price) < tick
    assert (rounded >= price) if up else (rounded <= price)


@given(qty=prices, step=st.sampled_from(STEPS))
def test_rounded_qty_is_never_more_than_asked_and_within_one_step(
        qty: Decimal, step: Decimal) -> None:
    rounded = rules(step=step).round_qty(qty)
    assert rounded % step == 0
    assert rounded <= qty
    assert qty - rounded < step


@given(price=prices, tick=st.sampled_from(TICKS), up=st.booleans())
def test_plain_text_of_a_rounded_price_is_plain_and_exact(
        price: Decimal, tick: Decimal, up: bool) -> None:
    rounded = rules(tick=tick).round_price(price, up=up)
    text = plain(rounded)
    assert PLAIN_DECIMAL.match(text), text
    assert Decimal(text) == rounded


@given(qty=prices, step=st.sampled_from(STEPS))
def test_plain_text_of_a_rounded_quantity_is_plain_and_exact(qty: Decimal, step: Decimal) -> None:
    rounded = rules(step=step).round_qty(qty)
    text = plain(rounded)
    assert PLAIN_DECIMAL.match(text), text
    assert Decimal(text) == rounded


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("1E+5"), "100000"),
    (Decimal("1000.000"), "1000"),
    (Decimal("0.00000010"), "0.0000001"),
    (Decimal("-1.5E-7"), "-0.00000015"),
])
def test_plain_text_never_uses_exponent_notation_or_trailing_zeros(value: Decimal,
                                                                    expected: str) -> None:
    assert plain(value) == expected


# --- re-rounding a planned order onto changed rules ------------------------------------

def request(side: Side, type_: OrderType, trigger_price: str | None = None,
            price: str | None = None, quantity: str = "0.1237") -> OrderRequest:
    role = OrderRole.STOP_LOSS if type_ is OrderType.STOP_MARKET else OrderRole.TAKE_PROFIT
    return OrderRequest("BTCUSDT", side, type_, Decimal(quantity), "tb-BTCUSDT-k-sl2", role,
                        price=Decimal(price) if price else None,
                        trigger_price=Decimal(trigger_price) if trigger_price else None,
                        reduce_only=True)


@pytest.mark.parametrize(("side", "type_", "planned", "on_grid"), [
    (Side.SELL, OrderType.STOP_MARKET, "49500.37", "49500.0"),          # a long's stop: down
    (Side.BUY, OrderType.STOP_MARKET, "50500.12", "50500.5"),           # a short's stop: up
    (Side.SELL, OrderType.TAKE_PROFIT_MARKET, "51000.12", "51000.5"),   # a long's target: up
    (Side.BUY, OrderType.TAKE_PROFIT_MARKET, "48999.9", "48999.5"),     # a short's target: down
])
def test_onto_grid_moves_a_trigger_away_from_the_market(side: Side, type_: OrderType,
                                                        planned: str, on_grid: str) -> None:
    """The tick grew from 0.1 to 0.5 since the order was planned: it can neither trigger
    at once nor close at a worse price than planned."""
    coarser = rules(tick=Decimal("0.5"), step=Decimal("0.01"))
    moved = coarser.onto_grid(request(side, type_, trigger_price=planned))
    assert moved.trigger_price == Decimal(on_grid)
    assert moved.quantity == Decimal("0.12")                             # down to the step
    assert replace(moved, trigger_price=None, quantity=Decimal(0)) == replace(
        request(side, type_, trigger_price=planned), trigger_price=None, quantity=Decimal(0))


@pytest.mark.parametrize(("side", "limit", "on_grid"), [
    (Side.SELL, "51000.12", "51000.5"), (Side.BUY, "48999.9", "48999.5")])
def test_onto_grid_never_lets_a_limit_pay_more_than_planned(side: Side, limit: str,
                                                            on_grid: str) -> None:
    coarser = rules(tick=Decimal("0.5"), step=Decimal("0.01"))
    assert coarser.onto_grid(request(side, OrderType.LIMIT, price=limit)).price == Decimal(on_grid)


@given(side=st.sampled_from(list(Side)),
       type_=st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET]),
       price=prices, qty=prices, tick=st.sampled_from(TICKS), step=st.sampled_from(STEPS))
def test_onto_grid_lands_on_the_grid_and_leaves_an_on_grid_order_alone(
        side: Side, type_: OrderType, price: Decimal, qty: Decimal, tick: Decimal,
        step: Decimal) -> None:
    grid = rules(tick=tick, step=step)
    moved = grid.onto_grid(request(side, type_, trigger_price=str(price), quantity=str(qty)))
    assert moved.trigger_price is not None and moved.trigger_price % tick == 0
    assert moved.quantity % step == 0 and moved.quantity <= qty
    assert grid.onto_grid(moved) == moved


def test_a_rules_change_reads_as_the_operator_would_say_it() -> None:
    """SYMBOL_RULES: names in words, numbers without Binance's padding ("0.10000000")."""
    from trader.symbol_rules import describe_rules_change
    old = rules(tick=Decimal("0.10000000"), step=Decimal("0.00100000"))
    new = replace(rules(tick=Decimal("0.50000000"), step=Decimal("0.00100000")),
                  min_notional=Decimal("5000"), status="SETTLING")
    assert describe_rules_change(old, new) == ("tick size 0.1 → 0.5, min notional 100 → "
                                               "5,000, status TRADING → SETTLING")
    assert describe_rules_change(old, old) == "unchanged"


def test_price_filter_bounds_refuse_a_price_past_them_and_name_the_bound() -> None:
    """PRICE_FILTER: price/stopPrice >= minPrice and <= maxPrice, each "disabled on 0"
    (https://developers.binance.com/docs/derivatives/usds-margined-futures/common-definition)."""
    bounded = replace(rules(tick=Decimal("0.1"), step=Decimal("0.001")),
                      min_price=Decimal("556.8"), max_price=Decimal("4529764"))
    assert bounded.price_refusal(Decimal("4529764")) == ""
    assert bounded.price_refusal(Decimal("556.8")) == ""
    assert bounded.price_refusal(Decimal("5000000")) == (
        "5,000,000 is above BTCUSDT's highest allowed price 4,529,764")
    assert bounded.price_refusal(Decimal("1")) == (
        "1 is below BTCUSDT's lowest allowed price 556.8")
    unbounded = replace(bounded, min_price=Decimal(0), max_price=Decimal(0))
    assert unbounded.price_refusal(Decimal("1")) == unbounded.price_refusal(
        Decimal("99999999")) == ""
