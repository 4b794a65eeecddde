"""Protection and lifecycle alert texts as they read on a phone: "SYMBOL: what happened in
words; what the agent does (client id at the end)". Prices and quantities read as in the
FILL alert and /status (trader/display.py: "SL 49,790", "0.5"), never as the Decimal the
record holds ("49790.00", "0.500"), and no text starts with an internal client id.

The records below carry trailing zeros on purpose ("49790.00", "0.500"), as the exchange's
answers do, so a raw Decimal in a text shows."""

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.positions import OPENED, leg_id, make
from tests.test_alert_flows import on_a_wiped_disk
from tests.test_alert_flows import open_long as open_long_by_signal
from tests.test_engine import open_long
from trader.adoption import adoption_alert
from trader.alerts import Alert, AlertName
from trader.domain import OrderRole
from trader.events import (
    Flatten,
    LegGone,
    LegPlaced,
    LegRejected,
    Policy,
    PositionSizeChanged,
    Tick,
)
from trader.lifecycle import step
from trader.position import ExitPlan, Leg, LegOrder, Position
from trader.startup import boot
from trader.symbol_rules import SymbolRules

D = Decimal
SL, TP, T1 = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TAKE_PROFIT_1
POLICY = Policy()
RULES = SymbolRules(SYMBOL, tick_size=D("0.10"), step_size=D("0.001"), min_qty=D("0.001"),
                    min_notional=D("100"))
RAW = re.compile(r"\d\.\d*0\b")          # a Decimal with a trailing zero: "49790.00", "0.500"


def position(**changes: object) -> Position:
    """A protected LONG 0.500 at 50000.00: SL 49790.00, TP 51000.00."""
    return make(quantity="0.500", entry="50000.00", stop="49790.00", tp="51000.00", **changes)


def apply(record: Position, *events: object, seconds: float = 0) -> tuple[Position, list]:
    now, actions = OPENED + timedelta(seconds=seconds), []
    for event in events:
        result = step(record, event, now, POLICY)
        record, actions = result.position, actions + result.actions
    return record, actions


def texts(actions: list, name: AlertName) -> list[str]:
    """The alerts said: the actions' own, and what a market close says once sent."""
    said = [a.told if isinstance(a, Flatten) else a for a in actions]
    return [a.text for a in said if isinstance(a, Alert) and a.name is name]


def assert_reads_well(text: str, *client_ids: str) -> None:
    assert text.startswith(f"{SYMBOL}: "), text
    assert not RAW.search(text), text
    for client_id in client_ids:
        assert not text.startswith(client_id) and not text.startswith(f"{SYMBOL}: {client_id}")
        assert f"{client_id}" not in text or text.endswith(f"({client_id})"), text


def stop_replaced(record: Position) -> tuple[Position, str]:
    """The stop cancelled by hand, its replacement placed (pending): (record, its id)."""
    gone = LegGone(SL, record.stop.order.client_id, True, status="CANCELED")  # type: ignore[union-attr]
    record, _ = apply(record, gone)
    assert record.stop.pending is not None
    return record, record.stop.pending


# --- PROTECTION_RESTORED ------------------------------------------------------------------------

HALF = D("0.250")


def with_tp1(base: Position, tp1: Leg, seq: int) -> Position:
    """`base` under the two-TP plan: TP1 (`tp1`) for half, TP2 for the other half."""
    return replace(base, exit_plan=ExitPlan.TWO, tp1_quantity=HALF,
                   take_profit=replace(base.take_profit,
                                       order=replace(base.take_profit.order, quantity=HALF)),
                   take_profit_1=tp1, seq={**base.seq, T1.value: seq})


def test_protected_again_shows_the_levels_as_the_fill_alert_does() -> None:
    record, new_id = stop_replaced(position())
    _, actions = apply(record, LegPlaced(SL, new_id, D("49790.00"), D("0.500")))
    [text] = texts(actions, AlertName.PROTECTION_RESTORED)
    assert text == (f"{SYMBOL}: protected again: the LONG 0.5 has SL 49,790 and TP 51,000 on "
                    "the exchange")
    assert_reads_well(text, new_id)


def test_protected_again_under_the_two_tp_plan_names_tp1_and_its_part() -> None:
    two = with_tp1(position(), Leg(T1, D("50500.00"),
                                   LegOrder(leg_id(SYMBOL, T1), D("50500.00"), HALF)), seq=1)
    record, new_id = stop_replaced(two)
    _, actions = apply(record, LegPlaced(SL, new_id, D("49790.00"), D("0.500")))
    [text] = texts(actions, AlertName.PROTECTION_RESTORED)
    assert text == (f"{SYMBOL}: protected again: the LONG 0.5 has SL 49,790, TP1 50,500 (0.25) "
                    "and TP2 51,000 on the exchange")


# --- refusals -----------------------------------------------------------------------------------

def test_a_refused_stop_placement_shows_its_level_and_sizes_formatted() -> None:
    record, new_id = stop_replaced(position())
    _, actions = apply(record, LegRejected(SL, new_id, "Margin is insufficient."))
    [text] = texts(actions, AlertName.POSITION_UNPROTECTED)
    assert text == (f"{SYMBOL}: could not place the stop-loss at 49,790 for 0.5 of the LONG 0.5 "
                    "(Margin is insufficient.); retrying in 2 s, then with backoff up to every "
                    "25 s")
    assert_reads_well(text, new_id)


def test_a_refused_stop_move_shows_the_new_and_the_kept_level_formatted() -> None:
    moved = position()
    moved = replace(moved, stop=replace(moved.stop, trigger_price=D("49900.00")))
    now = OPENED + timedelta(seconds=1)
    record, actions = apply(moved, Tick(now, None, RULES), seconds=1)
    new_id = record.stop.pending
    assert new_id is not None, actions
    _, actions = apply(record, LegRejected(SL, new_id, "Margin is insufficient."), seconds=1)
    [text] = texts(actions, AlertName.PROTECTION)
    assert text == (f"{SYMBOL}: could not move the stop-loss to 49,900 (Margin is "
                    "insufficient.); the current one at 49,790 stays: retrying in 2 s, then "
                    "with backoff up to every 25 s")
    assert_reads_well(text, new_id)



def test_a_move_refused_inside_retry_after_says_when_it_is_tried_again() -> None:
    """A /sl (or a trail) met by the exchange's 429 / 418 read 'retrying in 2 s' while a
    15-20 s Retry-After held every request back: the next try waits for the exchange."""
    moved = position()
    moved = replace(moved, stop=replace(moved.stop, trigger_price=D("49900.00")))
    record, _ = apply(moved, Tick(OPENED + timedelta(seconds=1), None, RULES), seconds=1)
    new_id = record.stop.pending
    assert new_id is not None
    refused = LegRejected(SL, new_id, "-1003 not sent: API circuit open", retry_after=17.6)
    record, actions = apply(record, refused, seconds=1)
    [text] = texts(actions, AlertName.PROTECTION)
    assert text.endswith("the current one at 49,790 stays: retrying in 18 s, when the "
                         "exchange's Retry-After ends, then with backoff up to every 25 s"), text
    assert record.stop.retry_at == OPENED + timedelta(seconds=1 + 17.6)


def test_a_stop_refused_inside_retry_after_is_placed_again_when_the_wait_ends() -> None:
    """The safety side of the wait: the stop is not given up, and it goes again at the
    first tick after the exchange's Retry-After (not on the 2 s schedule inside it)."""
    from trader.events import PlaceLeg
    record, new_id = stop_replaced(position())
    record, _ = apply(record, LegRejected(SL, new_id, "-1003 not sent", retry_after=17.6))

    def stop_placements(seconds: float) -> list[PlaceLeg]:
        _, actions = apply(record, Tick(OPENED + timedelta(seconds=seconds), None, RULES),
                           seconds=seconds)
        return [a for a in actions if isinstance(a, PlaceLeg) and a.role is SL]
    assert stop_placements(2) == [] and stop_placements(17) == []
    assert len(stop_placements(18)) == 1

# --- SL_MISSING after the debounce ----------------------------------------------------------------

def test_a_stop_missing_for_several_observations_names_its_level_and_ends_with_its_id() -> None:
    record = position()
    stop_id = record.stop.order.client_id  # type: ignore[union-attr]
    missing = LegGone(SL, stop_id, False)
    actions: list = []
    for seconds in range(POLICY.sl_missing_cycles + 1):
        record, more = apply(record, missing, seconds=seconds)
        actions += more
    [text] = texts(actions, AlertName.SL_MISSING)
    assert text == (f"{SYMBOL}: stop-loss at 49,790 missing from the open orders for 3 "
                    "observations; the LONG 0.5 may have no stop: replacing it after the "
                    f"debounce ({stop_id})")
    assert_reads_well(text, stop_id)


# --- lifecycle ----------------------------------------------------------------------------------

def test_a_stop_level_already_passed_reads_formatted_and_says_what_closes() -> None:
    record, new_id = stop_replaced(position())
    _, actions = apply(record, LegRejected(SL, new_id, "-2021", level_passed=True))
    [text] = texts(actions, AlertName.POSITION_UNPROTECTED)
    assert text == (f"{SYMBOL}: Binance refused the stop-loss at 49,790: the price is already "
                    "past it (-2021); closing the LONG 0.5 at market, as the stop-loss would have")
    assert_reads_well(text, new_id)


def test_tp1_already_passed_reads_formatted_and_says_what_follows() -> None:
    two = with_tp1(position(), Leg(T1, D("50500.00"), pending=leg_id(SYMBOL, T1, 2)), seq=2)
    _, actions = apply(two, LegRejected(T1, leg_id(SYMBOL, T1, 2), "-2021", level_passed=True))
    [text] = texts(actions, AlertName.PROTECTION)
    assert text == (f"{SYMBOL}: the price is already past TP1 50,500; its part 0.25 is closed "
                    "at market, the stop moves to breakeven for the rest, TP2 stays at 51,000")
    assert_reads_well(text, leg_id(SYMBOL, T1, 2))


def test_a_reduced_position_shows_both_sizes_formatted() -> None:
    _, actions = apply(position(), PositionSizeChanged(D("0.300"), D("50000.00"), "by hand"))
    [text] = texts(actions, AlertName.POSITION_REDUCED)
    assert text == (f"{SYMBOL}: LONG reduced by hand from 0.5 to 0.3; protection follows the "
                    "new size")
    assert_reads_well(text)


def test_breakeven_given_up_shows_the_kept_stop_formatted() -> None:
    record = make(quantity="0.050", entry="50000.00", stop="49500.00", tp="52000.00",
                  partial_taken=True)
    actions: list = []
    seconds = 60.0
    for _ in range(POLICY.breakeven_attempts + 1):
        now = OPENED + timedelta(seconds=seconds)
        record, more = apply(record, Tick(now, D("50100"), RULES), seconds=seconds)
        actions += more
        if record.breakeven_done:
            break
        record, more = apply(record, LegRejected(SL, record.stop.pending or "", "-2019 margin"),
                             seconds=seconds)
        seconds += 60
    [text] = [t for t in texts(actions, AlertName.PROTECTION) if "breakeven" in t]
    assert text == (f"{SYMBOL}: could not move the stop to breakeven after "
                    f"{POLICY.breakeven_attempts} attempts; the stop stays at 49,500")


# --- adoption, boot and sweep lines ---------------------------------------------------------------

def test_adoption_alerts_show_the_size_formatted_and_the_key_last() -> None:
    record = position()
    ours = adoption_alert(SYMBOL, record, ours=True, to_close=False)
    assert ours.text == (f"{SYMBOL}: picked up its own LONG 0.5 again; protecting it "
                         f"({record.key})")
    stranger = adoption_alert(SYMBOL, record, ours=False, to_close=False)
    assert stranger.text.startswith(f"{SYMBOL}: a LONG 0.5 the agent did not open is on the "
                                    "exchange: adopted and protected")


async def test_the_boot_report_shows_sizes_formatted_and_keys_last(tmp_path) -> None:
    world = await make_world(tmp_path)
    await open_long_by_signal(world)
    key = world.engine.positions[SYMBOL].key
    restarted = on_a_wiped_disk(world, tmp_path / "wiped")
    lines = await boot(restarted.engine)      # as the CLI prints them; the phone has the
    [line] = [line for line in lines if "picked up again" in line]     # adoption's alert
    assert line.startswith(f"{SYMBOL}: its own LONG ") and line.endswith(f"({key})"), line
    assert_reads_well(line)


async def test_leftover_orders_swept_name_their_client_id_last(tmp_path) -> None:
    world = await make_world(tmp_path)
    await open_long(world)
    record = world.engine.positions[SYMBOL]
    ids = [leg.order.client_id for leg in record.legs if leg.order is not None]
    swept = await world.engine.sweep_orphans(SYMBOL, None)   # as once the record is closed
    assert len(swept) == 2
    assert sorted(line.rsplit(" (", 1)[1].rstrip(")") for line in swept) == sorted(ids)
    for line in swept:
        assert line.startswith(f"{SYMBOL}: leftover order cancelled, the exchange says "), line
        assert_reads_well(line, *ids)
