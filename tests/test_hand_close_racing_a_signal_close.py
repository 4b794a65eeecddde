"""A position closed by hand in the Binance app just before the agent decided to close it
itself (an opposite signal, a /close, a time exit) while the user-data stream had not told
it yet: the agent's reduce-only market close finds nothing to close and the position is
gone. The trade's record must say MANUAL (the closing fill is the hand's: Binance names an
app order web_/android_/ios_..., the paper exchange manual-<n>), not the reason of the
close the agent only tried. It said SIGNAL_CLOSE: close_record.close_reason let the
agent's own pending reason win over a closing fill that was not the agent's.
Seen as a flake of test_operator_intent_e2e (SIGNAL_CLOSE recorded where MANUAL was
expected) under load."""

from tests.engine_world import SYMBOL, make_world, short_signal
from tests.positions import make
from tests.test_close_record import closing_fill
from tests.test_engine import open_long
from trader.close_record import close_reason
from trader.domain import CloseReason, OrderRole


async def test_a_hand_close_the_stream_has_not_told_yet_is_recorded_manual(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    late = world.paper.sim.close_by_hand(SYMBOL, world.clock.now())   # not published yet
    assert late, "the paper exchange closed nothing"
    world.strategy.next = short_signal()          # the agent wants out too, on this candle
    await world.step()
    world.paper.publish(late)                     # the stream catches up
    await world.step()
    assert SYMBOL not in world.engine.positions
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason is CloseReason.MANUAL, closed.close_reason


def test_a_closing_fill_by_hand_outranks_the_reason_of_a_close_the_agent_only_tried() -> None:
    position = make(live_legs=False)
    for tried in (CloseReason.SIGNAL_CLOSE, CloseReason.COMMAND, CloseReason.TIME_EXIT):
        assert close_reason(position, None, None, tried,
                            [closing_fill("web_abc")]) is CloseReason.MANUAL
        # A fill the exchange cannot name ("" : its order is unknown) tells nothing.
        assert close_reason(position, None, None, tried, [closing_fill("")]) is tried
        assert close_reason(position, None, None, tried, []) is tried


def test_the_agents_own_close_keeps_its_reason() -> None:
    position = make(live_legs=False)
    ours = position.next_client_id(OrderRole.FLATTEN)[1]
    assert close_reason(position, None, None, CloseReason.SIGNAL_CLOSE,
                        [closing_fill(ours)]) is CloseReason.SIGNAL_CLOSE
