"""Property, end to end on the paper exchange: along any price path, the engine never holds
an exchange position without exactly one stop-loss and one take-profit for its whole size
after a tick, and no action ever flips a position. (The state machine alone is driven with
random event sequences in tests/test_lifecycle_machine.py.)"""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, long_signal, make_world, short_signal
from trader.position import PositionState

moves = st.lists(st.integers(min_value=-90, max_value=90), min_size=5, max_size=25)
sides = st.lists(st.sampled_from(["long", "short", None]), min_size=5, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=moves, signals=sides)
async def test_no_reachable_state_leaves_a_position_without_a_stop(tmp_path_factory, moves, signals):
    world = await make_world(tmp_path_factory.mktemp("prop"))
    await world.warm_up(26)
    for move, wanted in zip(moves, signals, strict=False):
        if wanted == "long":
            world.strategy.next = long_signal("0.005", "0.01")
        elif wanted == "short":
            world.strategy.next = short_signal("0.005", "0.01")
        close = world.last_close * (1 + Decimal(move) / Decimal(10000))
        await world.step(close.quantize(Decimal("0.1")))
        exchange_position = await world.paper.position(SYMBOL)
        record = world.engine.positions.get(SYMBOL)
        if exchange_position.side is None:
            continue
        assert record is not None, "an exchange position the engine does not track"
        assert exchange_position.side is record.side, "a position was flipped"
        assert record.state is PositionState.PROTECTED, f"not protected: {record.state}"
        legs = sorted((o.type.value, o.quantity) for o in await world.open_orders()
                      if o.side is record.side.opposite and o.reduce_only)
        assert legs == [("STOP_MARKET", exchange_position.size),
                        ("TAKE_PROFIT_MARKET", exchange_position.size)], legs
    world.store.close()
