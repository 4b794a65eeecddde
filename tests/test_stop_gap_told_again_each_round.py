"""SL_MISSING "3 stop placements unanswered ... waiting up to 15 s before placing again" is
said again for each new round of placements lost, once a round, with how long ago it was
first said.

Found by review9 (test_rv9_second_round_unanswered.py): it was said once per episode
(`Leg.unanswered_told`); after the wait the stop was placed again, and when that round of
three was lost too (the gateway still down) nothing more was said until a stop was
confirmed: a position without a stop for minutes had one alert promising a placement in
15 s. A round is new once none of the placements out was out when it was last said
(trader/stop_backup.py `_new_round`).
"""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import SYMBOL
from tests.positions import leg_id
from tests.test_move_stop_command import stops, world_with_a_long
from tests.test_stop_answer_lost_with_nothing_covering import (
    NOW,
    QUANTITY,
    SL,
    cancel_the_stop_by_hand,
    placements,
    stop_answers,
)
from tests.test_stop_backup_bound_and_restart import NEVER, alerts, three_out
from tests.test_stop_gap_told_to_the_operator import told, unanswered
from trader.events import LegPlaced, LegPlacementUnknown, LegRejected, Policy
from trader.lifecycle import step
from trader.position import Position

LATER = NOW + timedelta(seconds=20)          # the wait (15 s) over, the next round lost


def _never(position: Position, seq: int) -> Position:
    return step(position, LegRejected(SL, leg_id(SYMBOL, SL, seq), NEVER, never_placed=True),
                LATER, Policy()).position


def _after_the_wait() -> Position:
    """Told of sl2..sl4; all three known never placed: sl5 is placed, no alert."""
    position = told(three_out())
    for seq in (2, 3):
        position = _never(position, seq)
    again = step(position, LegRejected(SL, leg_id(SYMBOL, SL, 4), NEVER, never_placed=True),
                 LATER, Policy())
    assert [p.client_id for p in placements(again)] == [leg_id(SYMBOL, SL, 5)]
    assert not alerts(again, "SL_MISSING")
    return again.position


def _lost(position: Position, seq: int) -> tuple[Position, list[str]]:
    result = step(position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, seq)), LATER, Policy())
    return result.position, [a.text for a in alerts(result, "SL_MISSING")]


def test_a_second_round_of_three_unanswered_stop_placements_is_said_again_once():
    position, said = _after_the_wait(), []
    for seq in (5, 6, 7):
        position, texts = _lost(position, seq)
        said += texts
    [again] = said
    for part in ("BTCUSDT: the LONG 0.1 still has no confirmed stop-loss (20 s since it was "
                 "first said)", "3 more stop placements at 49,500 unanswered",
                 "waiting up to 15 s", "/close BTCUSDT"):
        assert part in again, (part, again)
    # the probes of the next ticks find sl7 still unknown: not said every tick
    for _ in range(3):
        position, texts = _lost(position, 7)
        assert texts == []


def test_a_backup_sent_while_the_old_rounds_placements_are_still_out_is_not_a_new_round():
    """sl2 known never placed makes room: sl4, still unknown, gets the backup sl5 at once.
    sl5 lost too reaches the bound with sl3 and sl4 still out (said of already): nothing.
    Once the three out are all sent since (sl5, sl6, sl7), it is said again."""
    position = _never(told(three_out()), 2)
    position, texts = _lost(position, 4)                       # room again: backup sl5
    assert position.stop.pending == leg_id(SYMBOL, SL, 5) and texts == []
    position, texts = _lost(position, 5)
    assert texts == [], "sl3 and sl4 were said already"
    position, _ = _lost(_never(position, 3), 5)                  # backup sl6
    position, texts = _lost(position, 6)
    assert texts == [], "sl4 was said already"
    position, _ = _lost(_never(position, 4), 6)                  # backup sl7
    position, texts = _lost(position, 7)
    assert len(texts) == 1 and "3 more stop placements" in texts[0], texts


def test_negative_a_stop_confirmed_after_the_wait_ends_the_episode_quietly():
    """A stop confirmed after the wait: PROTECTION_RESTORED, no SL_MISSING; the next
    episode's first alert is the first one again (no "still", no "more")."""
    position = _after_the_wait()
    landed = step(position, LegPlaced(SL, leg_id(SYMBOL, SL, 5), Decimal(49500), QUANTITY),
                  LATER, Policy())
    assert alerts(landed, "PROTECTION_RESTORED") and not alerts(landed, "SL_MISSING")
    stop = landed.position.stop
    assert (stop.unanswered_since, stop.unanswered_out) == (None, ())


async def test_the_engine_says_it_once_per_round_while_binance_answers_none(tmp_path):
    """On the paper exchange: six stop placements lost in a row. The first round is said in
    the tick it is lost, the second once the wait is over and it is lost too; then a stop
    lands and the all-clear follows."""
    world = await world_with_a_long(tmp_path)
    stop_answers(world, *["lost"] * 6)
    await cancel_the_stop_by_hand(world)
    await world.step()
    assert len(unanswered(world.alerts("SL_MISSING"))) == 1
    for _ in range(2):
        world.clock.set(world.clock.now() + timedelta(seconds=16))
        await world.engine.tick()
    said = unanswered(world.alerts("SL_MISSING"))
    assert len(said) == 2, said
    assert "still has no confirmed stop-loss" in said[1] and "3 more stop placements" in said[1]
    await world.engine.tick()                                  # a tick later: not again
    assert len(unanswered(world.alerts("SL_MISSING"))) == 2
    world.clock.set(world.clock.now() + timedelta(seconds=16))
    await world.engine.tick()
    await world.engine.tick()
    assert [o.client_id[-3:] for o in await stops(world)] == ["sl8"]
    assert world.alerts("PROTECTION_RESTORED")
    assert len(unanswered(world.alerts("SL_MISSING"))) == 2
