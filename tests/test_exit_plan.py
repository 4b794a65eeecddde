"""The exit plan and the trailing distance, pure: planning TP1 (level, part, when the
one-TP plan stays), the settings' parsing, what each leg should close, the state machine
around TP1's fill (one stop move, to breakeven, whatever order the exchange reports the
fill and the smaller position in), the trail that starts after TP1 and follows the best
price, and the records (client ids, the stored body, the close reason) that carry it."""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.positions import OPENED, leg_id, make
from trader.alerts import AlertName
from trader.close_record import close_reason
from trader.domain import (
    ClientId,
    CloseReason,
    ExchangePosition,
    Fill,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from trader.events import (
    CancelOrder,
    EntryFilled,
    Flatten,
    LegFilled,
    LegPlaced,
    LegRejected,
    LegSeen,
    PlaceLeg,
    Policy,
    PositionSizeChanged,
    Tick,
)
from trader.lifecycle import step
from trader.management import (
    FirstTarget,
    TrailingDistance,
    breakeven_price,
    trailing_stop,
    with_exit_plan,
)
from trader.observe import FILL_REPORT_LAG, SymbolView, observe
from trader.order_tracker import TrackedOrder
from trader.position import ExitPlan, Leg, LegOrder, Position, PositionState
from trader.reconcile import OUTSIDE, reduction_cause
from trader.symbol_rules import SymbolRules
from trader.trade_store import TradeStore

D = Decimal
SYMBOL = "BTCUSDT"
RULES = SymbolRules(SYMBOL, tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("100"))
POLICY = Policy()
SL, TP, T1 = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1


def entering(side: Side = Side.BUY, quantity: str = "0.100") -> Position:
    """A planned entry at 50000: stop 1 % away (500), target 2 % away."""
    stop, target = (D("49500"), D("51000")) if side is Side.BUY else (D("50500"), D("49000"))
    return make(side=side, state=PositionState.ENTERING, quantity=quantity, entry="50000",
                stop=stop, tp=target, live_legs=False)


def two_tp_long(quantity: str = "0.100") -> Position:
    """Protected under the two-TP plan: stop for all, TP1 0.050 at 50500, TP2 0.050 at 51000."""
    qty = D(quantity)
    half = qty / 2
    position = make(quantity=quantity, entry="50000", stop="49500", tp="51000")
    return replace(position, exit_plan=ExitPlan.TWO, tp1_quantity=half,
                   take_profit=replace(position.take_profit,
                                       order=replace(position.take_profit.order, quantity=half)),
                   take_profit_1=Leg(T1, D("50500"), LegOrder(leg_id(SYMBOL, T1), D("50500"),
                                                              half)),
                   seq={**position.seq, T1.value: 1})


def tick(position: Position, mark: str, seconds: float = 60, atr: Decimal | None = None):
    now = OPENED + timedelta(seconds=seconds)
    return step(position, Tick(now, D(mark), RULES, atr=atr), now, POLICY)


def placements(result) -> list[PlaceLeg]:
    return [a for a in result.actions if isinstance(a, PlaceLeg)]


def cancels(result) -> list[CancelOrder]:
    return [a for a in result.actions if isinstance(a, CancelOrder)]


def apply(position: Position, *events, seconds: float = 60) -> tuple[Position, list]:
    now, actions = OPENED + timedelta(seconds=seconds), []
    for event in events:
        result = step(position, event, now, POLICY)
        position, actions = result.position, actions + result.actions
    return position, actions


# --- planning -------------------------------------------------------------------------------

@pytest.mark.parametrize("side", list(Side))
def test_tp1_is_planned_at_r_stop_distances_for_its_fraction_rounded_to_the_grid(side) -> None:
    planned = with_exit_plan(entering(side, "0.101"), FirstTarget(D("0.5"), D("1.2")), RULES)
    assert planned.exit_plan is ExitPlan.TWO
    assert planned.take_profit_1.trigger_price == (D("50600") if side is Side.BUY
                                                   else D("49400"))      # 1.2 x 500
    assert planned.tp1_quantity == D("0.050")                  # 0.0505 rounded down
    assert planned.leg_quantity(T1) == D("0.050")
    assert planned.leg_quantity(TP) == D("0.051")               # TP2: the rest
    assert planned.leg_quantity(SL) == D("0.101")


def test_tp1_level_is_rounded_away_from_the_entry() -> None:
    stop_off_grid = replace(entering(), stop=Leg(SL, D("49666.6")))     # 333.4 away
    planned = with_exit_plan(stop_off_grid, FirstTarget(D("0.5"), D("1")), RULES)
    assert planned.take_profit_1.trigger_price == D("50333.4")
    short = replace(entering(Side.SELL), stop=Leg(SL, D("50333.35")))
    assert with_exit_plan(short, FirstTarget(), RULES).take_profit_1.trigger_price == D("49666.6")


@pytest.mark.parametrize("first_target, quantity, why", [
    (None, "0.100", "the one-TP plan"),
    (FirstTarget(D("0.5"), D("2")), "0.100", "TP1 would sit on TP2"),
    (FirstTarget(D("0.5"), D("3")), "0.100", "TP1 would lie beyond TP2"),
    (FirstTarget(D("0.5"), D("1")), "0.003", "half is below the min notional (100 USDT)"),
    (FirstTarget(D("0.01"), D("1")), "0.100", "TP1's part rounds down to nothing"),
])
def test_a_position_that_cannot_be_split_keeps_the_one_tp_plan(first_target, quantity,
                                                                 why) -> None:
    position = entering(quantity=quantity)
    assert with_exit_plan(position, first_target, RULES) == position, why


def test_settings_parse_the_trailing_distance_as_a_percentage_or_an_atr_multiple() -> None:
    assert TrailingDistance.parse("0.3%") == TrailingDistance(D("0.003"))
    assert TrailingDistance.parse(" 1.5 ATR ") == TrailingDistance(D("1.5"), in_atr=True)
    assert str(TrailingDistance.parse("0.30%")) == "0.3%"
    assert str(TrailingDistance.parse("2atr")) == "2atr"
    for bad in ("0.3", "abc", "0%", "-1%", "100%", "atr", "1.5 x atr", "nan%"):
        with pytest.raises(ValueError):
            TrailingDistance.parse(bad)


def test_the_settings_refuse_a_bad_trailing_distance_and_tp1_outside_its_range() -> None:
    from trader.config import ConfigError, load_settings
    settings = load_settings(_env_file=None, TRADEBOT_EXIT_PLAN="two",
                             TRADEBOT_TRAILING_DISTANCE="1.5atr")
    assert (settings.exit_plan, settings.trailing_distance) == ("two", "1.5atr")
    assert (settings.tp1_fraction, settings.tp1_r) == (D("0.5"), D("1.0"))
    for name, value in (("TRADEBOT_TRAILING_DISTANCE", "far"), ("TRADEBOT_TP1_FRACTION", "1"),
                        ("TRADEBOT_TP1_R", "0"), ("TRADEBOT_EXIT_PLAN", "three")):
        with pytest.raises(ConfigError):
            load_settings(_env_file=None, **{name: value})


# --- what each leg closes -----------------------------------------------------------------

@pytest.mark.parametrize("quantity, tp1, tp2", [
    ("0.100", "0.050", "0.050"),     # as planned
    ("0.050", "0", "0.050"),         # TP1 filled (or its part taken by hand): TP2 as it was
    ("0.070", "0.020", "0.050"),     # an entry filled in part, or reduced by hand: TP1 shrinks
    ("0.030", "0", "0.030"),
    ("0.120", "0.050", "0.070"),     # added by hand: TP2 takes the extra
])
def test_the_take_profits_always_close_exactly_the_position(quantity, tp1, tp2) -> None:
    position = replace(two_tp_long(), quantity=D(quantity))
    assert (position.leg_quantity(T1), position.leg_quantity(TP)) == (D(tp1), D(tp2))
    assert position.leg_quantity(SL) == D(quantity)


def test_an_entry_fill_places_the_stop_tp1_and_tp2_each_for_its_part() -> None:
    planned = with_exit_plan(entering(), FirstTarget(), RULES)
    result = step(planned, EntryFilled(D("0.100"), D("50000")), OPENED, POLICY)
    assert [(p.role, p.trigger_price, p.quantity) for p in placements(result)] == [
        (SL, D("49500"), D("0.100")), (TP, D("51000"), D("0.050")),
        (T1, D("50500"), D("0.050"))]
    assert [p.client_id for p in placements(result)] == [
        leg_id(SYMBOL, SL), leg_id(SYMBOL, TP), leg_id(SYMBOL, T1)]


# --- TP1's fill --------------------------------------------------------------------------

def test_tp1_fill_moves_the_stop_once_to_breakeven_for_the_rest_on_the_next_tick() -> None:
    """The observation (smaller position, TP1 filled) changes no order: the stop still
    covers; on the tick that follows, one new stop at breakeven for the rest, TP2 as is."""
    position = two_tp_long()
    observed, actions = apply(position, PositionSizeChanged(D("0.050"), D("50000")),
                              LegFilled(T1, leg_id(SYMBOL, T1), D("0.050"), complete=True))
    assert not placements_of(actions) and not cancels_of(actions)
    assert observed.take_profit_1 is None and observed.partial_taken
    assert [a.name for a in actions if hasattr(a, "name")] == [AlertName.FILL]
    ticked = tick(observed, "50100")        # (the trail, 0.3 % behind, is still looser)
    breakeven = breakeven_price(observed, POLICY.taker_fee, RULES)
    assert placements(ticked) == [PlaceLeg(SL, leg_id(SYMBOL, SL, 2), breakeven, D("0.050"))]
    assert not cancels(ticked)                       # new-first: the old one after
    assert ticked.position.take_profit.order.client_id == leg_id(SYMBOL, TP)
    live = step(ticked.position, LegPlaced(SL, leg_id(SYMBOL, SL, 2), breakeven, D("0.050")),
                OPENED + timedelta(seconds=61), POLICY)
    assert cancels(live) == [CancelOrder(leg_id(SYMBOL, SL), SL)]


def placements_of(actions: list) -> list[PlaceLeg]:
    return [a for a in actions if isinstance(a, PlaceLeg)]


def cancels_of(actions: list) -> list[CancelOrder]:
    return [a for a in actions if isinstance(a, CancelOrder)]


def test_tp1_reported_after_the_smaller_position_still_moves_the_stop_once() -> None:
    """The position shrank, TP1 still looks live (its report is late): the tick cancels
    TP1 (TP2 covers the rest) and holds the stop; the cancel finds TP1 filled; the next
    tick moves the stop to breakeven, once."""
    shrunk, actions = apply(two_tp_long(), PositionSizeChanged(D("0.050"), D("50000")))
    assert not actions
    first = tick(shrunk, "50500")
    assert cancels(first) == [CancelOrder(leg_id(SYMBOL, T1), T1)] and not placements(first)
    raced, _ = apply(first.position, LegFilled(T1, leg_id(SYMBOL, T1), D("0.050"), True))
    assert raced.take_profit_1 is None and raced.partial_taken
    second = tick(raced, "50100", seconds=62)
    assert [p.quantity for p in placements(second)] == [D("0.050")]
    assert placements(second)[0].trigger_price == breakeven_price(raced, POLICY.taker_fee, RULES)


def observation(position: Position, size: str, tp1_status: OrderStatus,
                learned_seconds_ago: float = 0) -> list:
    at = OPENED + timedelta(seconds=100)
    learned = at - timedelta(seconds=learned_seconds_ago)
    orders = {leg.order.client_id: TrackedOrder(Order(
        SYMBOL, leg.order.client_id, Side.SELL,
        OrderType.STOP_MARKET if leg.role is SL else OrderType.TAKE_PROFIT_MARKET,
        tp1_status if leg.role is T1 else OrderStatus.NEW, leg.order.quantity,
        filled_qty=leg.order.quantity if leg.role is T1 and tp1_status is OrderStatus.FILLED
        else D(0), trigger_price=leg.trigger_price, reduce_only=True), learned)
        for leg in position.legs}
    live = [t.order for t in orders.values() if t.order.status.live]
    view = SymbolView(SYMBOL, at, ExchangePosition(SYMBOL, D(size), D("50000")), orders, live,
                      D("50500"))
    return [e for e in observe(position, view) if not isinstance(e, LegSeen)]


def test_a_tp1_fill_waits_for_the_exchange_position_to_show_it() -> None:
    position = two_tp_long()
    assert observation(position, "0.100", OrderStatus.FILLED) == []
    late = observation(position, "0.100", OrderStatus.FILLED,
                       FILL_REPORT_LAG.total_seconds())
    assert late == [LegFilled(T1, leg_id(SYMBOL, T1), D("0.050"), complete=True)]
    shown = observation(position, "0.050", OrderStatus.FILLED)
    assert shown == [PositionSizeChanged(D("0.050"), D("50000")),
                     LegFilled(T1, leg_id(SYMBOL, T1), D("0.050"), complete=True)]


def test_tp1_level_already_passed_takes_its_part_at_market_and_goes_on() -> None:
    position = replace(two_tp_long(), take_profit_1=Leg(T1, D("50500"),
                                                        pending=leg_id(SYMBOL, T1, 2)))
    result = step(position, LegRejected(T1, leg_id(SYMBOL, T1, 2), "-2021", level_passed=True),
                  OPENED, POLICY)
    [flatten] = [a for a in result.actions if isinstance(a, Flatten)]
    assert (flatten.role, flatten.quantity, flatten.reason) == (
        OrderRole.PARTIAL_TP, D("0.050"), CloseReason.TAKE_PROFIT)
    assert result.position.take_profit_1 is None and result.position.partial_taken
    assert result.position.state is not PositionState.CLOSING


def test_tp2_filling_first_is_replaced_for_what_is_left() -> None:
    """TP1 was not live (refused) and TP2 took its part: what is left gets a take-profit
    again; once it covers, TP1 (whose part is gone) is cancelled."""
    position = replace(two_tp_long(), take_profit_1=Leg(T1, D("50500")))
    left, actions = apply(position, PositionSizeChanged(D("0.050"), D("50000")),
                          LegFilled(TP, leg_id(SYMBOL, TP), D("0.050"), complete=True))
    assert placements_of(actions) == [PlaceLeg(TP, leg_id(SYMBOL, TP, 2), D("51000"),
                                               D("0.050"))]


# --- trailing ---------------------------------------------------------------------------------

def test_the_two_tp_trail_waits_for_tp1_then_follows_the_best_price_never_the_mark() -> None:
    position = replace(two_tp_long(), trail_activation=D("0.001"))
    distance = TrailingDistance(D("0.004"))
    assert trailing_stop(position, D("50900"), RULES, distance) is None   # TP1 not filled
    after_tp1 = replace(position, take_profit_1=None, partial_taken=True, breakeven_done=True,
                        best_price=D("50800"))
    assert trailing_stop(after_tp1, D("50600"), RULES, distance) == D("50596.8")  # 50800 -0.4 %
    assert trailing_stop(after_tp1, D("50900"), RULES, distance) == D("50696.4")


def test_an_atr_trail_keeps_its_multiple_of_the_atr_and_waits_without_one() -> None:
    position = replace(make(entry="50000", stop="49500", tp="52000"), best_price=D("50400"))
    in_atr = TrailingDistance(D("1.5"), in_atr=True)
    assert trailing_stop(position, D("50350"), RULES, in_atr, D("100")) == D("50250")
    assert trailing_stop(position, D("50350"), RULES, in_atr, None) is None


def test_the_best_price_is_tracked_from_every_ticks_mark_also_while_a_leg_is_replaced() -> None:
    attaching = replace(make(entry="50000", stop="49500", tp="52000"),
                        state=PositionState.ATTACHING,
                        stop=Leg(SL, D("49500"), pending=leg_id(SYMBOL, SL, 2)))
    seen = tick(attaching, "50400").position
    assert seen.best_price == D("50400")
    assert tick(seen, "50300", seconds=61).position.best_price == D("50400")
    short = replace(attaching, side=Side.SELL)
    assert tick(short, "49700").position.best_price == D("49700")


# --- the records that carry it ---------------------------------------------------------------

def test_tp1_client_ids_have_their_own_role_and_older_ids_still_parse() -> None:
    assert ClientId.parse("tb-BTCUSDT-k1-t11") == ClientId(SYMBOL, "k1", T1, 1)
    assert ClientId.parse("tb-BTCUSDT-k1-t112") == ClientId(SYMBOL, "k1", T1, 12)
    for role in ("sl", "tp", "pt", "fl", "en"):
        parsed = ClientId.parse(f"tb-BTCUSDT-k1-{role}3")
        assert parsed is not None and parsed.role.value == role and parsed.seq == 3
    assert T1.protective


def test_a_two_tp_position_round_trips_and_an_older_body_loads_with_the_one_tp_plan(
        tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    position = replace(two_tp_long(), best_price=D("50123.4"))
    store.save_position(position)
    assert store.position(SYMBOL, position.key) == position
    body = json.loads(store.db.execute("SELECT body FROM positions").fetchone()[0])
    for field in ("exit_plan", "take_profit_1", "tp1_quantity"):
        body.pop(field)
    store.db.execute("UPDATE positions SET body = ?", [json.dumps(body)])
    older = store.position(SYMBOL, position.key)
    assert older.exit_plan is ExitPlan.ONE and older.take_profit_1 is None
    assert older.best_price == D("50123.4")
    store.close()


def test_the_close_reason_counts_tp1_and_a_reduction_by_tp1_is_no_news() -> None:
    position = two_tp_long()
    filled = Order(SYMBOL, leg_id(SYMBOL, T1), Side.SELL, OrderType.TAKE_PROFIT_MARKET,
                   OrderStatus.FILLED, D("0.050"), filled_qty=D("0.050"))
    assert close_reason(position, None, None, None, (), filled) is CloseReason.TAKE_PROFIT
    fill = Fill("9", SYMBOL, leg_id(SYMBOL, T1), Side.SELL, D("0.05"), D("50500"), D("1"),
                D("0.5"), OPENED)
    assert close_reason(position, None, None, None, [fill]) is CloseReason.TAKE_PROFIT
    assert reduction_cause(position, [fill]) == ""


def test_a_price_back_through_breakeven_after_tp1_closes_the_rest_at_market() -> None:
    """TP1 filled between two ticks and the price fell back below breakeven: the stop
    cannot go there (it would fire at once), the rest closes at market as BREAKEVEN_STOP,
    with no refused placement and no POSITION_UNPROTECTED alert."""
    after_tp1, _ = apply(two_tp_long(), PositionSizeChanged(D("0.050"), D("50000")),
                         LegFilled(T1, leg_id(SYMBOL, T1), D("0.050"), complete=True))
    result = tick(after_tp1, "49990")
    [flatten] = [a for a in result.actions if isinstance(a, Flatten)]
    assert (flatten.reason, flatten.quantity) == (CloseReason.BREAKEVEN_STOP, D("0.050"))
    breakeven = breakeven_price(after_tp1, POLICY.taker_fee, RULES)
    assert breakeven not in [p.trigger_price for p in placements(result)]
    assert AlertName.POSITION_UNPROTECTED not in [getattr(a, "name", None)
                                                  for a in result.actions]


def test_a_reduction_the_trades_cannot_name_is_named_by_the_leg_that_executed_part() -> None:
    """reduction_cause: the trade list unread (None), with no closing trade yet, or whose
    latest closing trade Binance cannot name (""): the leg whose order executed part (as
    the stream told) names it. Negative: a trade of a named order not ours stays "outside
    the agent", whatever executed; nothing executed stays as before."""
    position = make(SYMBOL, Side.BUY, PositionState.PROTECTED, Decimal("0.5"), "50000",
                    "49000", "52000")
    stop_part = frozenset({OrderRole.STOP_LOSS})
    anonymous = Fill("7", SYMBOL, "", Side.SELL, Decimal("0.2"), Decimal("48900"),
                     Decimal("0"), Decimal("0"), OPENED)
    by_hand = replace(anonymous, client_id="ios_abc123")
    assert reduction_cause(position, None, stop_part) == "by a partial fill of its stop-loss"
    assert reduction_cause(position, [], stop_part) == "by a partial fill of its stop-loss"
    assert reduction_cause(position, [anonymous], stop_part) \
        == "by a partial fill of its stop-loss"
    assert reduction_cause(position, [by_hand], stop_part) == OUTSIDE
    assert reduction_cause(position, [anonymous]) == OUTSIDE
    assert reduction_cause(position, None) == "outside the agent"
