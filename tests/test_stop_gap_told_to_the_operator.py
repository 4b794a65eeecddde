"""Every stop placement allowed out unanswered (trader/stop_backup.py MAX_STOPS_IN_FLIGHT:
a gateway's burst of 5xx pages, or timeouts, lost three in a row) while nothing covers the
position: the agent waits for the oldest to be known never placed (recvWindow + 10 s after
its send, ~15 s) before it sends another. Meanwhile the operator heard nothing at all for a
new entry's first stop (SL_MISSING is the documented alert for a position without a stop),
and after a stop cancelled by hand only "replacing it now", which did not happen; a restart
inside the wait was as silent. Now SL_MISSING says so once, when the bound is reached (at
boot too), naming the position, the level and the wait; PROTECTION_RESTORED follows as
soon as a stop is confirmed, even while later placements are still unanswered."""

import asyncio
import json
import time
from datetime import timedelta
from decimal import Decimal

from bot.format import format_status
from storage.codec import dumps
from tests.engine_world import SYMBOL, make_world, restart
from tests.fakes.telegram_html import parse_telegram_html
from tests.positions import leg_id, make
from tests.test_first_command_after_boot import SYMBOL as AGENT_SYMBOL
from tests.test_first_command_after_boot import streaming_agent
from tests.test_move_stop_command import stops, world_with_a_long
from tests.test_stop_answer_lost_with_nothing_covering import (
    NOW,
    QUANTITY,
    SL,
    cancel_the_stop_by_hand,
    placements,
    stop_answers,
)
from tests.test_stop_backup_after_two_lost_answers import PAGE
from tests.test_stop_backup_after_two_lost_answers import stops as agent_stops
from tests.test_stop_backup_bound_and_restart import NEVER, ProcessKilled, alerts, three_out
from trader.alerts import Alert
from trader.commands import CommandKind
from trader.domain import IntentStatus, OrderType
from trader.events import EntryFilled, LegPlaced, LegPlacementUnknown, LegRejected, Policy
from trader.exchange.base import UnknownOutcome
from trader.going_down import going_down_text
from trader.lifecycle import step
from trader.position import Position, PositionState
from trader.position_body import position_from_body
from trader.startup import boot
from trader.views import status_view

WAIT = "3 stop placements at 49,500 unanswered"


def told(position: Position) -> Position:
    """three_out(), then the third's answer is lost too: the bound is reached."""
    result = step(position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    [alert] = alerts(result, "SL_MISSING")
    assert not placements(result)
    return result.position


def unanswered(texts: list[str]) -> list[str]:
    return [text for text in texts if "unanswered" in text]


# --- the pure rules ------------------------------------------------------------------------

def test_the_bound_reached_raises_sl_missing_once_naming_the_position_and_the_wait():
    result = step(three_out(), LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW,
                  Policy(placement_expiry_seconds=15.0))
    [alert] = alerts(result, "SL_MISSING")
    assert alert.symbol == SYMBOL
    for part in ("BTCUSDT", "LONG 0.1", "no confirmed stop-loss", WAIT,
                 "waiting up to 15 s for Binance before placing again", "/close BTCUSDT"):
        assert part in alert.text, (part, alert.text)
    assert not placements(result)
    # the probe of the next ticks finds it still unknown: nothing more, not every tick
    again = step(result.position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    assert again.actions == [] and again.position is result.position


def test_a_new_entry_whose_first_stop_is_lost_three_times_is_alerted_at_the_third():
    entering = make(state=PositionState.ENTERING, live_legs=False)
    first = step(entering, EntryFilled(QUANTITY, Decimal(50000)), NOW, Policy())
    assert [a.name.value for a in first.actions if isinstance(a, Alert)] == ["FILL"]
    assert [p.client_id for p in placements(first)] == [leg_id(SYMBOL, SL, 1)]
    position = first.position
    for seq in (1, 2):              # room for a backup: sent, no alert (the usual burst)
        lost = step(position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, seq)), NOW, Policy())
        assert [p.client_id for p in placements(lost)] == [leg_id(SYMBOL, SL, seq + 1)]
        assert not [a for a in lost.actions if isinstance(a, Alert)], lost.actions
        position = lost.position
    third = step(position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 3)), NOW, Policy())
    [alert] = alerts(third, "SL_MISSING")
    assert "LONG 0.1 has no confirmed stop-loss" in alert.text
    assert "3 stop placements at 49,500 unanswered" in alert.text


def test_no_alert_while_another_stop_covers_the_position():
    """Negative: one of the lost placements found live covers the position: the pending
    one's unknown outcome is no gap, so no backup and no alert."""
    found = step(three_out(), LegPlaced(SL, leg_id(SYMBOL, SL, 2), Decimal(49500),
                                        QUANTITY), NOW, Policy())
    assert found.position.state is PositionState.PROTECTED
    probed = step(found.position, LegPlacementUnknown(SL, leg_id(SYMBOL, SL, 4)), NOW, Policy())
    assert probed.actions == []


def test_the_all_clear_follows_the_first_stop_confirmed_not_the_last_answer():
    position = told(three_out())
    landed = step(position, LegPlaced(SL, leg_id(SYMBOL, SL, 2), Decimal(49500), QUANTITY), NOW,
                  Policy())
    [restored] = alerts(landed, "PROTECTION_RESTORED")
    assert "protected again" in restored.text and "SL 49,500" in restored.text
    assert landed.position.stop.pending == leg_id(SYMBOL, SL, 4)     # still unanswered
    assert not landed.position.stop.unanswered_told
    # the last one lands later: it replaces the first new-first, quietly
    last = step(landed.position, LegPlaced(SL, leg_id(SYMBOL, SL, 4), Decimal(49500), QUANTITY), NOW,
                Policy())
    assert [a.client_id for a in last.actions if hasattr(a, "client_id")] == [
        leg_id(SYMBOL, SL, 2)]
    assert not alerts(last, "PROTECTION_RESTORED") and not alerts(last, "SL_MISSING")


def test_after_the_wait_the_stop_is_placed_again_without_a_second_alert():
    position = told(three_out())
    for seq in (2, 3):
        position = step(position, LegRejected(SL, leg_id(SYMBOL, SL, seq), NEVER,
                                              never_placed=True), NOW, Policy()).position
    again = step(position, LegRejected(SL, leg_id(SYMBOL, SL, 4), NEVER, never_placed=True),
                 NOW, Policy())
    [placement] = placements(again)
    assert placement.client_id == leg_id(SYMBOL, SL, 5)
    assert again.actions == [placement]     # told already: no POSITION_UNPROTECTED
    landed = step(again.position, LegPlaced(SL, leg_id(SYMBOL, SL, 5), Decimal(49500), QUANTITY), NOW,
                  Policy())
    assert alerts(landed, "PROTECTION_RESTORED")


def test_the_told_round_survives_the_record_and_an_older_record_reads_as_not_told():
    """An older record (without the round, or with the flag aa7f5a2 wrote) reads as not
    told: a restart inside the wait says it once more, as at boot."""
    position = told(three_out())
    assert position_from_body(dumps(position)) == position
    raw = json.loads(dumps(position))
    del raw["stop"]["unanswered_since"], raw["stop"]["unanswered_out"]
    raw["stop"]["unanswered_told"] = True
    assert position_from_body(json.dumps(raw)).stop.unanswered_told is False


# --- the engine on the paper exchange ------------------------------------------------------

async def test_three_lost_answers_the_operator_is_told_in_the_same_tick(tmp_path):
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost", "lost", "lost")
    await cancel_the_stop_by_hand(world)

    await world.step()

    assert await stops(world) == []
    [told_now] = unanswered(world.alerts("SL_MISSING"))
    assert "waiting up to 15 s" in told_now
    shown = parse_telegram_html(format_status(status_view(world.engine)))
    assert "❌ not attached (3 placements sent, no answer yet ⏳)" in shown, shown
    await world.step()                                     # a tick later: not again
    world.clock.set(world.clock.now() + timedelta(seconds=16))
    await world.engine.tick()
    assert [o.client_id[-3:] for o in await stops(world)] == ["sl5"]
    assert len(unanswered(world.alerts("SL_MISSING"))) == 1
    assert world.alerts("PROTECTION_RESTORED")
    shown = parse_telegram_html(format_status(status_view(world.engine)))
    assert "no answer yet" not in shown and "SL 98,000" in shown, shown


async def test_a_restart_with_every_stop_placement_unanswered_tells_the_operator_at_boot(
        tmp_path):
    """The process dies while the third placement is in flight (before its answer could be
    stepped): the restarted agent finds all three unresolved while it boots; it waits for
    them (any may still land) and says so then, not 15 s later."""
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost", "lost")
    real_place = world.paper.place
    sent: list[str] = []

    async def place(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET:
            sent.append(request.client_id[-3:])
            if len(sent) == 3:
                raise ProcessKilled
        return await real_place(request)
    stopped_at = world.paper.place
    world.paper.place = place  # type: ignore[method-assign]
    await cancel_the_stop_by_hand(world)
    try:
        await world.step()
    except ProcessKilled:
        pass
    else:
        raise AssertionError(f"the third stop placement was not sent: {sent}")
    world.paper.place = stopped_at  # type: ignore[method-assign]
    assert not unanswered(world.alerts("SL_MISSING"))
    world = restart(world)

    await boot(world.engine)

    assert await stops(world) == []
    [told_at_boot] = unanswered(world.alerts("SL_MISSING"))
    assert "3 stop placements" in told_at_boot


async def test_going_down_inside_the_wait_says_the_next_start_waits_too(tmp_path):
    """SIGTERM (a deploy) inside the wait: the SHUTDOWN alert said "its placement was sent,
    its answer not in yet" and that the next start places the stop before trading; it
    places it only once the lost ones are known not to have landed."""
    world = await world_with_a_long(tmp_path)
    stop_answers(world, "lost", "lost", "lost")
    await cancel_the_stop_by_hand(world)
    await world.step()
    text = going_down_text(world.engine)
    assert "3 stop placements sent, none answered yet" in text, text
    assert "up to recvWindow + 10 s after they were sent" in text


async def test_the_wait_told_is_the_configured_recv_window_plus_the_probes_grace(tmp_path):
    world = await make_world(tmp_path, TRADEBOT_RECV_WINDOW_MS=7000)
    assert world.engine.interpreter.policy.placement_expiry_seconds == 17.0


# --- the agent against the fake Binance ----------------------------------------------------

async def test_a_new_entry_whose_stop_meets_three_gateway_pages_is_alerted_within_seconds(
        tmp_path):
    """From outside: the entry fills, its stop and both backups get a 502 page (not placed).
    Before, the operator heard nothing until "never placed" ~15 s later."""
    async with streaming_agent(tmp_path) as (fake, agent):
        fake.inject_fault("POST /fapi/v1/algoOrder", raw_answer=PAGE, execute=False,
                          times=3, only={"type": "STOP_MARKET"})
        result = await agent.run(CommandKind.LONG)
        assert fake.sim.position(AGENT_SYMBOL).quantity > 0, result.lines
        engine = agent.engine
        started = time.monotonic()
        told: list[str] = []
        while time.monotonic() - started < 5.0 and not told:
            await engine.tick()
            told = [a.text for a in engine.store.recent_alerts(50)
                    if a.name == "SL_MISSING" and "unanswered" in a.text]
            await asyncio.sleep(0.3)
        assert told, (f"no alert 5 s after the LONG's three stop placements were lost; "
                      f"stops on the exchange: {agent_stops(fake)}")
        assert "3 stop placements" in told[0] and "LONG" in told[0]
        assert agent_stops(fake) == []          # still waiting: none of them landed


# --- why the wait stays recvWindow + 10 s --------------------------------------------------

async def test_a_placement_landing_late_inside_the_wait_protects_and_leaves_one_stop(tmp_path):
    """Negative for shortening the wait: Binance checks a request's timestamp when its API
    server receives it (USD-M "General Info", timing security), but a 5xx "execution status
    UNKNOWN" is a request received and passed on, whose execution no document bounds. One
    that lands 9 s after its send (recvWindow 5 s + 1 s of skew passed) is found and kept:
    no other stop is sent while it may land, its intent is not journaled as never placed,
    one stop rests. Declared never placed at 6 s (the wait without its 10 s), a fifth stop
    went out at 7 s and the journal said "not found on the exchange" of an order that
    rested there (the orphan sweep then cancelled it as a leftover)."""
    world = await world_with_a_long(tmp_path)
    real_place, lost_requests = world.paper.place, []

    async def place(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET and len(lost_requests) < 3:
            lost_requests.append(request)
            raise UnknownOutcome("502 Bad Gateway page", http_status=502)
        return await real_place(request)
    world.paper.place = place  # type: ignore[method-assign]
    await cancel_the_stop_by_hand(world)
    await world.step()
    assert [r.client_id[-3:] for r in lost_requests] == ["sl2", "sl3", "sl4"]
    sent_at = world.clock.now()

    world.clock.set(sent_at + timedelta(seconds=7))         # past recvWindow + 1 s
    await world.engine.tick()
    assert await stops(world) == []                         # still waiting: none sent
    world.clock.set(sent_at + timedelta(seconds=9))
    await real_place(lost_requests[0])                      # the first lands, late
    await world.engine.tick()
    world.clock.set(sent_at + timedelta(seconds=16))        # the other two run out
    await world.engine.tick()
    await world.engine.tick()

    assert [o.client_id[-3:] for o in await stops(world)] == ["sl2"]
    landed = world.store.intent(lost_requests[0].client_id)
    assert landed is not None and landed.status is not IntentStatus.EXPIRED, landed
    stop = world.engine.positions[SYMBOL].stop
    assert (stop.order.client_id[-3:], stop.pending, stop.superseded) == ("sl2", None, ())
    assert world.engine.positions[SYMBOL].state is PositionState.PROTECTED
    assert world.alerts("PROTECTION_RESTORED")
