"""Risk: equity-linked risk fraction, stop clamps, adaptive RR, sizing, heat, position
cap, margin, and the open/close decision that never flips a position."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.positions import make
from trader.domain import Side, Signal
from trader.position import PositionState
from trader.risk import (
    EntryPlan,
    SignalDecision,
    SizingInput,
    Skip,
    clamp_stop_pct,
    decide,
    plan_entry,
    reward_risk,
    risk_fraction,
    total_open_risk,
)
from trader.strategy.regime import Regime, RegimeAdjustment
from trader.symbol_rules import SymbolRules

D = Decimal
BTC = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"),
                  min_notional=D("100"))
NORMAL = RegimeAdjustment(True, D(1), D(1), D(1), "normal", Regime.NORMAL)
HIGH = RegimeAdjustment(True, D("0.75"), D("1.3"), D("1.15"), "high", Regime.HIGH)
EXTREME = RegimeAdjustment(False, D(1), D("1.5"), D("1.2"), "EXTREME volatility", Regime.EXTREME)


def sizing(**changes: object) -> SizingInput:
    base = SizingInput(
        symbol="BTCUSDT", side=Side.BUY, price=D("50000"), equity=D("10000"),
        free_margin=D("10000"), risk_fraction=D("0.025"),
        signal=Signal(Side.BUY, 0.7, tp_pct=D("0.02"), sl_pct=D("0.01")), regime=NORMAL,
        rules=BTC, leverage=5, open_risk=D(0), max_heat=D("0.06"), max_position_pct=D("0.5"))
    return replace(base, **changes)


# --- risk fraction -----------------------------------------------------------------

def test_drawdown_of_five_percent_drops_risk_to_one_and_a_half() -> None:
    assert risk_fraction(D("9500"), D("10000"), D("0.025")) == D("0.015")


def test_drawdown_just_under_five_percent_keeps_the_current_fraction() -> None:
    assert risk_fraction(D("9501"), D("10000"), D("0.025")) == D("0.025")
    assert risk_fraction(D("9501"), D("10000"), D("0.015")) == D("0.015")


def test_new_equity_high_restores_the_base_fraction() -> None:
    assert risk_fraction(D("10001"), D("10000"), D("0.015")) == D("0.025")
    assert risk_fraction(D("10000"), D("10000"), D("0.015")) == D("0.025")


def test_fraction_is_clamped_to_floor_and_ceiling() -> None:
    assert risk_fraction(D("11000"), D("10000"), D("0.02"), base=D("0.05")) == D("0.03")
    assert risk_fraction(D("5000"), D("10000"), D("0.02"), reduced=D("0.002")) == D("0.01")


@given(st.decimals(0, 100000, places=2), st.decimals(0, 100000, places=2),
       st.decimals(0, D("0.2"), places=4))
def test_risk_fraction_always_stays_within_one_and_three_percent(
        equity: Decimal, peak: Decimal, current: Decimal) -> None:
    assert D("0.01") <= risk_fraction(equity, peak, current) <= D("0.03")


def test_stop_pct_is_clamped_between_forty_basis_points_and_two_percent() -> None:
    assert clamp_stop_pct(D("0.001")) == D("0.004")
    assert clamp_stop_pct(D("0.01")) == D("0.01")
    assert clamp_stop_pct(D("0.05")) == D("0.02")


@pytest.mark.parametrize("regime", list(Regime))
def test_trends_get_a_wider_reward_than_ranges(regime: Regime) -> None:
    assert reward_risk(regime, trending=True) > reward_risk(regime, trending=False) >= 1


# --- sizing --------------------------------------------------------------------------

def test_long_entry_is_sized_from_equity_risk_and_stop_distance() -> None:
    plan = plan_entry(sizing())
    assert isinstance(plan, EntryPlan)
    assert plan.stop_trigger == D("49500")
    # loss per unit = 500 + 0.0005 x (50000 + 49500); budget = 250 -> 0.4547.. -> 0.454
    assert plan.quantity == D("0.454")
    assert plan.risk_amount == D("0.454") * D("549.75")
    assert plan.take_profit_trigger == D("51000")
    assert plan.margin == plan.notional / 5 + plan.notional * D("0.001")


def test_short_entry_puts_stop_above_and_target_below() -> None:
    plan = plan_entry(sizing(side=Side.SELL,
                             signal=Signal(Side.SELL, 0.7, tp_pct=D("0.02"), sl_pct=D("0.01"))))
    assert isinstance(plan, EntryPlan)
    assert plan.stop_trigger == D("50500") and plan.take_profit_trigger == D("49000")


def test_stop_is_rounded_away_from_entry_so_the_distance_never_shrinks() -> None:
    long_plan = plan_entry(sizing(price=D("50000.3"),
                                  signal=Signal(Side.BUY, 0.7, D("0.02"), D("0.004"))))
    assert isinstance(long_plan, EntryPlan)
    assert long_plan.stop_trigger == D("49800.2")          # raw 49800.2988 rounded down
    assert long_plan.sl_pct >= D("0.004")
    short_plan = plan_entry(sizing(side=Side.SELL, price=D("50000.3"),
                                   signal=Signal(Side.SELL, 0.7, D("0.02"), D("0.004"))))
    assert isinstance(short_plan, EntryPlan)
    assert short_plan.stop_trigger == D("50200.4")         # raw 50200.3012 rounded up


def test_stop_is_rounded_toward_entry_when_away_would_break_the_upper_clamp() -> None:
    rules = SymbolRules("XUSDT", tick_size=D("0.01"), step_size=D("1"), min_qty=D("1"),
                        min_notional=D("5"))
    plan = plan_entry(sizing(symbol="XUSDT", price=D("10.005"), rules=rules,
                             signal=Signal(Side.BUY, 0.7, D("0.04"), D("0.02"))))
    assert isinstance(plan, EntryPlan)
    assert plan.stop_trigger == D("9.81")                   # 9.80 would be 2.05 % away
    assert D("0.004") <= plan.sl_pct <= D("0.02")


def test_too_coarse_a_tick_is_a_skip_not_a_wrong_stop() -> None:
    rules = replace(BTC, tick_size=D("5"))
    # 0.4 % under 103 is 102.588: down to 100 is 2.9 % away, up to 105 is above the entry
    result = plan_entry(sizing(price=D("103"), rules=rules, equity=D("100000"),
                               signal=Signal(Side.BUY, 0.7, D("0.02"), D("0.004"))))
    assert isinstance(result, Skip) and "tick size" in result.reason


def test_regime_multipliers_widen_the_stop_and_cut_the_size() -> None:
    normal = plan_entry(sizing())
    high = plan_entry(sizing(regime=HIGH))
    assert isinstance(normal, EntryPlan) and isinstance(high, EntryPlan)
    assert high.sl_pct == pytest.approx(D("0.013"), abs=D("0.000002"))
    assert high.risk_amount <= D("10000") * D("0.025") * D("0.75")
    assert high.quantity < normal.quantity


def test_extreme_regime_skips_the_entry() -> None:
    result = plan_entry(sizing(regime=EXTREME))
    assert isinstance(result, Skip) and result.reason.startswith("regime")


def test_target_is_at_least_the_adaptive_reward_risk() -> None:
    plan = plan_entry(sizing(trending=True, signal=Signal(Side.BUY, 0.7, D("0.001"), D("0.01"))))
    assert isinstance(plan, EntryPlan)
    assert plan.tp_pct >= plan.sl_pct * reward_risk(Regime.NORMAL, True) - D("0.000002")


def test_portfolio_heat_cap_skips_an_entry_that_would_exceed_it() -> None:
    result = plan_entry(sizing(open_risk=D("400")))     # 400 + ~250 > 6 % of 10000
    assert isinstance(result, Skip) and "heat" in result.reason
    assert isinstance(plan_entry(sizing(open_risk=D("300"))), EntryPlan)


def test_oversized_position_is_reduced_to_the_cap_instead_of_skipped() -> None:
    plan = plan_entry(sizing(signal=Signal(Side.BUY, 0.7, D("0.02"), D("0.004")),
                             max_position_pct=D("0.1")))
    assert isinstance(plan, EntryPlan)
    assert plan.notional <= D("0.1") * D("10000") * 5
    assert plan.quantity == D("0.1")


def test_position_cap_below_min_notional_is_a_skip() -> None:
    result = plan_entry(sizing(max_position_pct=D("0.001")))
    assert isinstance(result, Skip) and "min notional" in result.reason
    # the cap said with its unit and where it comes from (a 15 USDT account read "reduced to
    # the max position cap 37.50", a bare number)
    assert ("(reduced to the max position cap: 50.00 USDT notional = TRADEBOT_MAX_POSITION_PCT "
            "0.001 x equity 10000.00 x leverage 5)") in result.reason, result.reason


def test_below_min_qty_or_notional_is_a_skip() -> None:
    assert isinstance(plan_entry(sizing(equity=D("20"))), Skip)


@pytest.mark.parametrize("free", [D("9.99"), D("0")])
def test_free_margin_under_ten_usdt_is_a_skip(free: Decimal) -> None:
    result = plan_entry(sizing(free_margin=free))
    assert isinstance(result, Skip) and "margin" in result.reason


def test_free_margin_below_the_estimated_margin_is_a_skip_not_a_minus_2019() -> None:
    result = plan_entry(sizing(free_margin=D("1000")))  # needs ~4562
    assert isinstance(result, Skip) and "-2019" in result.reason


rules_strategy = st.builds(
    lambda tick, step, min_notional: SymbolRules("PUSDT", tick, step, step, min_notional),
    st.sampled_from([D("0.0001"), D("0.01"), D("0.1"), D("1")]),
    st.sampled_from([D("0.001"), D("0.1"), D("1")]),
    st.sampled_from([D("5"), D("100")]))


@settings(max_examples=300)
@given(rules=rules_strategy, side=st.sampled_from(list(Side)),
       price=st.decimals(D("0.5"), D("90000"), places=4),
       equity=st.decimals(50, 1_000_000, places=2),
       fraction=st.decimals(D("0.01"), D("0.03"), places=4),
       sl_pct=st.decimals(D("0.0001"), D("0.05"), places=5),
       tp_pct=st.decimals(D("0"), D("0.1"), places=5),
       regime=st.sampled_from([NORMAL, HIGH]),
       leverage=st.integers(1, 20), open_fraction=st.decimals(0, D("0.06"), places=4),
       free_fraction=st.decimals(D("0.2"), 1, places=3), cap=st.decimals(D("0.05"), 1, places=2))
def test_every_plan_respects_budget_clamps_sides_steps_heat_cap_and_margin(
        rules: SymbolRules, side: Side, price: Decimal, equity: Decimal, fraction: Decimal,
        sl_pct: Decimal, tp_pct: Decimal, regime: RegimeAdjustment, leverage: int,
        open_fraction: Decimal, free_fraction: Decimal, cap: Decimal) -> None:
    price = rules.round_price(price, up=True)
    assume(price > 0)
    i = sizing(symbol="PUSDT", side=side, price=price, equity=equity, risk_fraction=fraction,
               signal=Signal(side, 0.5, tp_pct, sl_pct), regime=regime, rules=rules,
               leverage=leverage, open_risk=equity * open_fraction,
               free_margin=equity * free_fraction, max_position_pct=cap)
    plan = plan_entry(i)
    if isinstance(plan, Skip):
        assert plan.reason
        return
    budget = equity * fraction * regime.size_mult
    assert plan.risk_amount <= budget * (1 + D("1e-20"))
    assert D("0.004") <= plan.sl_pct <= D("0.02")
    assert (plan.stop_trigger - price) * side.sign < 0 < (plan.take_profit_trigger - price) * side.sign
    assert plan.stop_trigger % rules.tick_size == 0 and plan.take_profit_trigger % rules.tick_size == 0
    assert plan.quantity % rules.step_size == 0 and plan.quantity >= rules.min_qty
    assert plan.notional >= rules.min_notional
    assert plan.notional <= cap * equity * leverage * (1 + D("1e-20"))
    assert i.open_risk + plan.risk_amount <= D("0.06") * equity
    assert plan.margin <= i.free_margin and i.free_margin >= 10


# --- decisions -------------------------------------------------------------------------

def test_signal_decisions() -> None:
    buy, sell = Signal(Side.BUY, 1, D("0.01"), D("0.005")), Signal(Side.SELL, 1, D("0.01"), D("0.005"))
    assert decide(None, buy)[0] is SignalDecision.OPEN
    assert decide(Side.BUY, buy)[0] is SignalDecision.HOLD
    assert decide(Side.BUY, sell)[0] is SignalDecision.CLOSE
    assert decide(Side.SELL, buy)[0] is SignalDecision.CLOSE
    assert decide(None, None)[0] is SignalDecision.HOLD


def test_there_is_no_reverse_decision() -> None:
    assert {d.value for d in SignalDecision} == {"OPEN", "CLOSE", "HOLD"}


@given(st.one_of(st.none(), st.sampled_from(list(Side))),
       st.one_of(st.none(), st.sampled_from(list(Side))))
def test_decide_never_opens_on_top_of_a_position(held: Side | None, wanted: Side | None) -> None:
    decision, reason = decide(held, Signal(wanted, 1, D("0.01"), D("0.005")) if wanted else None)
    assert reason
    if held is not None:
        assert decision in (SignalDecision.HOLD, SignalDecision.CLOSE)
    if held is not None and wanted is held.opposite:
        assert decision is SignalDecision.CLOSE


def test_total_open_risk_counts_open_and_entering_positions_and_not_past_breakeven() -> None:
    at_risk = make(key="k1", quantity="0.1", entry="50000", stop="49500")          # 50 at risk
    past_breakeven = make(key="k2", quantity="0.1", entry="50000", stop="50100")   # 0 at risk
    closed = make(key="k3", state=PositionState.CLOSED)
    # no fill seen yet, but it may fill any moment: its planned size at its planned stop
    entering = make(key="k4", state=PositionState.ENTERING, quantity="0.2")        # 100
    assert total_open_risk([at_risk, past_breakeven, closed, entering]) == D("150")


def test_total_open_risk_reads_the_stop_legs_trigger_price_for_every_open_state() -> None:
    """The planned stop (the leg's trigger price) is what counts, even while the stop order
    is missing or a close is in flight: that is where the agent will keep protecting it."""
    short = make(side=Side.SELL, key="s1", quantity="2", entry="100", stop="103", tp="90",
                 state=PositionState.ATTACHING)                                  # 6 at risk
    closing = make(key="c1", quantity="0.1", entry="50000", stop="49000",
                   state=PositionState.CLOSING)                                  # 100 at risk
    assert total_open_risk([short, closing]) == D("106")
    moved = short.with_leg(replace(short.stop, trigger_price=D("101")))
    assert total_open_risk([moved, closing]) == D("102")


# --- a base below the built-in levels (found by h-review13) ------------------------------
def test_a_base_below_the_floor_is_the_risk_taken() -> None:
    """TRADEBOT_RISK_BASE=0.004 was raised to the 1 % floor: a trader asking for less risk
    got 2.5 times as much."""
    assert risk_fraction(D("10000"), D("10000"), D("0.004"), base=D("0.004")) == D("0.004")
    assert risk_fraction(D("9000"), D("10000"), D("0.004"), base=D("0.004")) == D("0.004")


def test_a_drawdown_never_raises_the_risk() -> None:
    """A base of 1 % went up to 1.5 % after a 5 % drawdown."""
    assert risk_fraction(D("9400"), D("10000"), D("0.01"), base=D("0.01")) == D("0.01")
    assert risk_fraction(D("9400"), D("10000"), D("0.012"), base=D("0.012")) == D("0.012")


def test_a_fraction_saved_under_a_higher_base_is_cut_to_the_new_base() -> None:
    assert risk_fraction(D("9700"), D("10000"), D("0.015"), base=D("0.01")) == D("0.01")


def test_the_default_base_still_drops_to_one_and_a_half_percent() -> None:
    """Negative: from a base above 1.5 % the drawdown step is as before."""
    assert risk_fraction(D("9400"), D("10000"), D("0.025")) == D("0.015")
    assert risk_fraction(D("9400"), D("10000"), D("0.02"), base=D("0.02")) == D("0.015")


@given(st.decimals(0, 100000, places=2), st.decimals(1, 100000, places=2),
       st.decimals(D("0.0001"), D("0.2"), places=4), st.decimals(D("0.0001"), D("0.03"),
                                                                   places=4))
def test_the_fraction_never_exceeds_the_base(equity: Decimal, peak: Decimal, current: Decimal,
                                             base: Decimal) -> None:
    assert min(base, D("0.01")) <= risk_fraction(equity, peak, current, base=base) <= base
