"""A stop placement's answer lost, and its backup's too (a gateway's burst of 5xx pages loses
both): each lost placement gets its own backup at once while nothing covers the position,
up to three unresolved at a time (trader/stop_backup.py MAX_STOPS_IN_FLIGHT); the one that
lands is kept, the extras cancelled; the never placed forgotten. The pending one found never
placed is placed again at once, not on the refusal schedule; and after a restart the stop
placements the run before lost get their backup at boot, not once they expire.

Review 5 found the gap: with one backup only, the position had no stop for 16-18 s (the
probes' recvWindow + 10 s, then the 2 s retry), and a restart inside the gap placed the stop
14.5 s after start. tests/test_stop_backup_after_two_lost_answers.py is the reviewer's test
against the real agent; the pure rules and the engine on the paper exchange here."""

import json
from datetime import timedelta
from decimal import Decimal

from storage.codec import dumps, load
from tests.engine_world import SYMBOL, restart
from tests.positions import leg_id, protected
from tests.test_move_stop_command import stops, world_with_a_long
from tests.test_stop_answer_lost_with_nothing_covering import (
    NOW,
    QUANTITY,
    SL,
    TP,
    cancel_the_stop_by_hand,
    cancels,
    placements,
    position_key,
    stop_answers,
    stop_cancelled_by_hand_then_answer_lost,
)
from trader.alerts import Alert
from trader.domain import OrderType
from trader.events import LegGone, LegPlaced, LegPlacementUnknown, LegRejected, Policy
from trader.evolve import evolve
from trader.lifecycle import Step, step
from trader.position import Position, PositionState
from trader.position_body import position_from_body
from trader.startup import boot

LEVEL = Decimal("49500")
NEVER = "never placed (not found on the exchange)"


def three_out() -> Position:
    """sl1 cancelled by hand; sl2 and its backup sl3 lost in one burst; sl4 sent."""
    _, result = stop_cancelled_by_hand_then_answer_lost()
    third = step(result.position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 3)), NOW, Policy())
    assert [p.client_id for p in placements(third)] == [leg_id(SYMBOL, SL, 4)]
    return third.position


def alerts(result: Step, name: str) -> list[Alert]:
    return [a for a in result.actions if isinstance(a, Alert) and a.name.value == name]


# --- the pure rules ------------------------------------------------------------------------

def test_the_third_lands_and_the_two_lost_ones_found_live_later_are_cancelled():
    position = three_out()
    landed = step(position, LegPlaced(SL, leg_id(SYMBOL, SL, 4), LEVEL, QUANTITY), NOW, Policy())
    assert landed.position.state is PositionState.PROTECTED
    assert not cancels(landed) and not placements(landed)
    first = step(landed.position, LegPlaced(SL, leg_id(SYMBOL, SL, 2), LEVEL, QUANTITY), NOW,
                 Policy())
    assert cancels(first) == [leg_id(SYMBOL, SL, 2)]
    second = step(first.position, LegPlaced(SL, leg_id(SYMBOL, SL, 3), LEVEL, QUANTITY), NOW,
                  Policy())
    assert cancels(second) == [leg_id(SYMBOL, SL, 3)]
    stop = second.position.stop
    assert (stop.order.client_id, stop.pending, stop.superseded) == (
        leg_id(SYMBOL, SL, 4), None, ())
    assert not placements(first) and not placements(second)


def test_a_lost_one_lands_first_it_protects_the_other_is_extra_the_last_replaces_it():
    """Negative of the backup rule: a stop found live means no further backup; extras go."""
    position = three_out()
    found = step(position, LegPlaced(SL, leg_id(SYMBOL, SL, 2), LEVEL, QUANTITY), NOW, Policy())
    assert found.position.state is PositionState.PROTECTED
    assert not cancels(found) and not placements(found)
    assert found.position.stop.superseded == (leg_id(SYMBOL, SL, 3),)
    # the pending one's answer still unknown: the position is covered, no backup
    probed = step(found.position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    assert probed.actions == []
    extra = step(found.position, LegPlaced(SL, leg_id(SYMBOL, SL, 3), LEVEL, QUANTITY), NOW,
                 Policy())
    assert cancels(extra) == [leg_id(SYMBOL, SL, 3)]
    last = step(extra.position, LegPlaced(SL, leg_id(SYMBOL, SL, 4), LEVEL, QUANTITY), NOW,
                Policy())
    assert cancels(last) == [leg_id(SYMBOL, SL, 2)]          # new-first
    assert last.position.stop.order.client_id == leg_id(SYMBOL, SL, 4)


def test_the_lost_ones_never_placed_are_forgotten_quietly_then_the_last_is_placed_again_at_once():
    position = three_out()
    for seq in (2, 3):
        result = step(position, LegRejected(SL, leg_id(SYMBOL, SL, seq), NEVER,
                                            never_placed=True), NOW, Policy())
        assert result.actions == []
        position = result.position
    assert position.stop.superseded == ()
    again = step(position, LegRejected(SL, leg_id(SYMBOL, SL, 4), NEVER, never_placed=True),
                 NOW, Policy())
    [placement] = placements(again)      # in this very step: no 2 s on the retry schedule
    assert (placement.client_id, placement.trigger_price, placement.quantity) == (
        leg_id(SYMBOL, SL, 5), LEVEL, QUANTITY)
    assert again.position.stop.retry_at is None
    [unprotected] = alerts(again, "POSITION_UNPROTECTED")
    assert "placing it again now" in unprotected.text and "retrying" not in unprotected.text
    # lost again and never placed again: placed again at once, not alerted a second time
    lost = step(again.position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 5)), NOW, Policy())
    [backup] = placements(lost)
    assert backup.client_id == leg_id(SYMBOL, SL, 6)


def test_room_made_by_a_lost_one_never_placed_gives_the_unresolved_pending_one_a_backup():
    """The probe asks again while sl4's outcome is unknown (trader/exchange_actions.py
    `_probe_pending`): once sl2 is known never placed, three are no longer out."""
    position = three_out()
    full = step(position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    assert not placements(full)        # (the operator is told of the wait: SL_MISSING)
    room = step(position, LegRejected(SL, leg_id(SYMBOL, SL, 2), NEVER, never_placed=True),
                NOW, Policy()).position
    backed = step(room, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    [backup] = placements(backed)
    assert backup.client_id == leg_id(SYMBOL, SL, 5)
    assert backed.position.stop.superseded == (leg_id(SYMBOL, SL, 3), leg_id(SYMBOL, SL, 4))


def test_a_take_profit_never_placed_keeps_the_retry_schedule():
    position = step(protected(), LegGone(TP, leg_id(SYMBOL, TP, 1), True, status="CANCELED"),
                    NOW, Policy()).position
    result = step(position, LegRejected(TP, leg_id(SYMBOL, TP, 2), NEVER, never_placed=True),
                  NOW, Policy())
    assert not placements(result, TP)
    assert result.position.take_profit.retry_at is not None


def test_a_stop_move_never_placed_while_the_old_stop_covers_keeps_the_retry_schedule():
    position = protected()
    moving, new_id = position.placing(evolve(position.stop, trigger_price=Decimal("49600")))
    result = step(moving, LegRejected(SL, new_id, NEVER, never_placed=True), NOW, Policy())
    assert not placements(result)
    assert result.position.stop.retry_at is not None
    assert not alerts(result, "POSITION_UNPROTECTED")


def test_a_record_written_with_one_superseded_id_or_none_reads_back_as_a_tuple():
    """The record as the code before wrote it: a client id, or null (trader/position_body.py)."""
    position = three_out()
    assert position_from_body(dumps(position)) == position
    assert load(Position, json.loads(dumps(position))) == position     # storage/codec.py
    raw = json.loads(dumps(position))
    raw["stop"]["superseded"] = leg_id(SYMBOL, SL, 2)
    assert position_from_body(json.dumps(raw)).stop.superseded == (leg_id(SYMBOL, SL, 2),)
    raw["stop"]["superseded"] = None
    raw["take_profit"]["superseded"] = None
    read = position_from_body(json.dumps(raw))
    assert (read.stop.superseded, read.take_profit.superseded) == ((), ())
    assert read.stop.pending == leg_id(SYMBOL, SL, 4)


# --- the engine on the paper exchange ------------------------------------------------------

class ProcessKilled(BaseException):
    """The process dies here (not an Exception: no boundary of the engine catches it)."""


async def test_one_lost_answer_sends_exactly_one_backup(tmp_path):
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost")
    sent: list[str] = []
    real_place = world.paper.place

    async def place(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET:
            sent.append(request.client_id[-3:])
        return await real_place(request)
    world.paper.place = place  # type: ignore[method-assign]
    await cancel_the_stop_by_hand(world)

    await world.step()

    assert [o.client_id[-3:] for o in await stops(world)] == ["sl3"]
    assert sent == ["sl2", "sl3"]


async def test_two_lost_answers_the_third_stop_lands_in_the_same_tick(tmp_path):
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost", "lost")
    await cancel_the_stop_by_hand(world)

    await world.step()

    assert [o.client_id[-3:] for o in await stops(world)] == ["sl4"]
    position = world.engine.positions[SYMBOL]
    assert position.state is PositionState.PROTECTED
    assert position.stop.superseded == (leg_id(SYMBOL, SL, 2, key=position_key(world)),
                                        leg_id(SYMBOL, SL, 3, key=position_key(world)))
    assert not world.alerts("POSITION_UNPROTECTED")


async def test_three_lost_the_next_goes_in_the_tick_that_finds_them_never_placed(tmp_path):
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost", "lost", "lost")
    await cancel_the_stop_by_hand(world)
    await world.step()
    assert await stops(world) == []           # three out: no fourth while they may land
    world.clock.set(world.clock.now() + timedelta(seconds=16))    # past recvWindow + 10 s

    await world.engine.tick()

    assert [o.client_id[-3:] for o in await stops(world)] == ["sl5"]
    # told of the wait when the bound was reached, not again now that it is over
    assert [t for t in world.alerts("SL_MISSING") if "unanswered" in t]
    assert not world.alerts("POSITION_UNPROTECTED")


async def test_a_restart_while_a_stop_placement_is_unanswered_backs_it_up_at_boot(tmp_path):
    """The process dies with the replacement's request in flight (SIGTERM's budget ran out,
    a crash): the restarted agent places a backup while it boots, before trading, instead
    of waiting for the lost one to expire."""
    world = await world_with_a_long(tmp_path)
    real_place = world.paper.place

    async def place(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET:
            raise ProcessKilled
        return await real_place(request)
    world.paper.place = place  # type: ignore[method-assign]
    await cancel_the_stop_by_hand(world)
    try:
        await world.step()
    except ProcessKilled:
        pass
    else:
        raise AssertionError("the stop's replacement was not sent")
    world.paper.place = real_place  # type: ignore[method-assign]
    assert await stops(world) == []
    world = restart(world)

    await boot(world.engine)

    assert [o.client_id[-3:] for o in await stops(world)] == ["sl3"]
    stop = world.engine.positions[SYMBOL].stop
    assert stop.superseded == (leg_id(SYMBOL, SL, 2, key=position_key(world)),)
