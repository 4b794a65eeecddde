"""A smaller position heard before the fill that made it: who reduced it is said from the
fill, never guessed.

Binance does not order the two user-data events of one fill: the USD-M pages
(https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/
Event-Balance-and-Position-Update, .../Event-Order-Update) describe each alone, and the
streams' "Message Ordering Guarantee" covers "messages of the same event type" only. Found
by review9 (test_rv9_partial_stop_fill_out_of_order_in_ban): inside an IP ban a stop filled
in part, its ACCOUNT_UPDATE heard a tick before its ORDER_TRADE_UPDATE, and the phone was told
"LONG reduced outside the agent (by hand or another program)": the record took the size
with the cause read from the fills journaled so far (none), and nothing corrected it. Now a
reduction no known fill explains is taken at once (/status shows it, 📡) and said once its
fill is heard (trader/position_keeper.py `tell_cause`), or, with none within
WAIT_FOR_FILL, said with its cause not known yet and the cause after.
"""

import asyncio
from dataclasses import replace
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_alert_texts_formatted import position
from tests.test_first_command_after_boot import SYMBOL, Agent, streaming_agent
from tests.test_size_heard_during_ban import shown
from tests.test_stop_fill_during_ban import banned, long_open, ticks
from trader.alerts import AlertName, Severity
from trader.domain import CloseReason, Fill, OrderRole, Side
from trader.engine import Engine
from trader.reconcile import OUTSIDE, cause_unheard, fill_unheard
from trader.reduction_news import WAIT_FOR_FILL, UnsaidReductions

STOP_PART = "reduced by a partial fill of its stop-loss from 0.507 to 0.253"
LIQUIDATED = "reduced by the exchange (LIQUIDATION) from 0.507 to 0.338"
UNKNOWN = "who reduced it is not known yet"


async def stop_fills_half(fake: FakeBinance, agent: Agent) -> None:
    stop = agent.engine.positions[SYMBOL].stop.order
    assert stop is not None
    part = (fake.sim.position(SYMBOL).quantity / 2).quantize(Decimal("0.001"))
    await fake._publish(fake.sim.fill_partly(SYMBOL, stop.client_id, part, fake.now()))


def reduced(engine: Engine) -> list[tuple[str, str]]:
    return [(a.severity, a.text) for a in engine.store.recent_alerts(200)
            if a.name == AlertName.POSITION_REDUCED.value]


async def test_a_ban_stop_fill_heard_after_its_account_update_names_the_stop(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 120)
        fake.hold_order_updates()
        await stop_fills_half(fake, agent)          # ACCOUNT_UPDATE now ...
        await ticks(engine, 2)
        held = fake.sim.position(SYMBOL).quantity
        [view] = await shown(agent)                 # the size at once, the stream's word
        assert (view.quantity, view.size_heard) == (held, True)
        assert reduced(engine) == []                # nothing guessed meanwhile
        await fake.release_order_updates()          # ... ORDER_TRADE_UPDATE a tick later
        await ticks(engine, 2)
        [(level, text)] = reduced(engine)
        assert STOP_PART in text and level == Severity.WARN.value, text
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_a_partial_liquidation_heard_before_its_fill_stays_critical(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 120)
        fake.hold_order_updates()
        part = (fake.sim.position(SYMBOL).quantity / 3).quantize(Decimal("0.001"))
        await fake.close_position_by_exchange(SYMBOL, "autoclose-1796164000123", qty=part)
        await ticks(engine, 2)
        assert reduced(engine) == []
        await fake.release_order_updates()
        await ticks(engine, 2)
        [(level, text)] = reduced(engine)
        assert LIQUIDATED in text and level == Severity.CRITICAL.value, text
        assert "Check the account's margin and leverage" in text
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_a_fill_heard_past_the_wait_is_said_unknown_then_named_once(tmp_path):
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 120)
        fake.hold_order_updates()
        await stop_fills_half(fake, agent)
        await ticks(engine, 2)
        await asyncio.sleep(WAIT_FOR_FILL.total_seconds())
        await ticks(engine, 2)
        [(_, first)] = reduced(engine)
        assert UNKNOWN in first and "from 0.507 to 0.253" in first, first
        assert "outside the agent" not in first, first
        await fake.release_order_updates()
        await ticks(engine, 3)
        told = [text for _, text in reduced(engine)]
        assert told[1:] == [f"{SYMBOL}: the LONG reduction from 0.507 to 0.253 was made by a "
                            "partial fill of its stop-loss"], told
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_in_the_usual_order_the_stops_partial_fill_is_said_once_as_before(tmp_path):
    """The negative: the fill heard with (or before) its ACCOUNT_UPDATE: said at once, in
    the same words, and nothing more past the wait."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        sent = await banned(agent, fake, 120)
        await stop_fills_half(fake, agent)
        await ticks(engine, 2)
        assert reduced(engine) == [(Severity.WARN.value, f"{SYMBOL}: LONG {STOP_PART}; "
                                    "protection follows the new size")]
        await asyncio.sleep(WAIT_FOR_FILL.total_seconds())
        await ticks(engine, 2)
        assert len(reduced(engine)) == 1, reduced(engine)
        assert engine.keeper.unexplained.pending == {}
        assert len(fake.request_log) == sent, fake.request_log[sent:]


async def test_a_hand_reduction_heard_before_its_fill_is_still_said_outside(tmp_path):
    """The negative of the wait: the fill heard is somebody else's: "outside the agent"."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        await banned(agent, fake, 120)
        fake.hold_order_updates()
        await fake.close_position_by_hand(SYMBOL, Decimal("0.1"))
        await ticks(engine, 2)
        await fake.release_order_updates()
        await ticks(engine, 2)
        [(_, text)] = reduced(engine)
        assert "reduced outside the agent (by hand or another program) from 0.507 to 0.407" \
            in text, text


async def test_outside_a_ban_the_trade_list_names_the_stop_whatever_the_stream_order(tmp_path):
    """The normal path reads GET /fapi/v1/userTrades, which has the trade whatever the
    stream's order: the stop is named at once, as with the events in the usual order."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        fake.hold_order_updates()
        await stop_fills_half(fake, agent)
        await ticks(engine, 2)
        [(_, text)] = reduced(engine)
        assert STOP_PART in text, text
        await fake.release_order_updates()
        await ticks(engine, 3)
        assert len(reduced(engine)) == 1, reduced(engine)


async def test_a_liquidation_with_the_trade_list_unreadable_is_said_unknown_then_named(
        tmp_path):
    """Outside a ban, GET /fapi/v1/userTrades failing (HTTP 503): nothing read says who
    reduced it (it said "outside the agent (by hand or another program)", a WARN for a
    partial liquidation): said with its cause not known yet, then named once the list
    reads again, CRITICAL."""
    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        await long_open(agent)
        fake.inject_fault("GET /fapi/v1/userTrades", code=-1000, http_status=503, times=1000)
        part = (fake.sim.position(SYMBOL).quantity / 3).quantize(Decimal("0.001"))
        await fake.close_position_by_exchange(SYMBOL, "autoclose-1796164000123", qty=part)
        await ticks(engine, 2)
        assert reduced(engine) == []
        await asyncio.sleep(WAIT_FOR_FILL.total_seconds())
        await ticks(engine, 2)
        [(level, first)] = reduced(engine)
        assert UNKNOWN in first and "outside" not in first, first
        fake.clear_faults()
        await ticks(engine, 2)
        [_, (level, found)] = reduced(engine)
        assert found.startswith(f"{SYMBOL}: the LONG reduction from 0.507 to 0.338 was made "
                                "by the exchange (LIQUIDATION)"), found
        assert level == Severity.CRITICAL.value


def fill(side: Side, quantity: str, client_id: str = "") -> Fill:
    """A fill by hand (no client id of ours) when the test position opened."""
    return Fill("1", SYMBOL, client_id, side, Decimal(quantity), Decimal("50000"),
                Decimal("0"), Decimal("0"), position().opened_at)


def test_fills_that_cannot_tell_never_hold_the_cause_back() -> None:
    """Not read, or no opening fill among them (adopted, opened before the read): the
    cause is said from them at once, as before."""
    held = position()                              # a LONG 0.5
    assert not fill_unheard(held, Decimal("0.3"), None)
    assert not fill_unheard(held, Decimal("0.3"), [])
    assert not fill_unheard(held, Decimal("0.3"), [fill(Side.SELL, "0.2")])
    assert fill_unheard(held, Decimal("0.3"), [fill(Side.BUY, "0.5")])
    assert not fill_unheard(held, Decimal("0.3"), [fill(Side.BUY, "0.5"),
                                                   fill(Side.SELL, "0.2")])
    # another position of ours (its key) is not this one's: it cannot tell
    other = fill(Side.BUY, "0.5", "tb-BTCUSDT-otherkey-en1")
    assert not fill_unheard(held, Decimal("0.3"), [other])


def test_unread_fills_hold_the_cause_back_unless_the_stream_saw_a_leg_execute() -> None:
    """The trade list not read (HTTP 503): "outside the agent" would be a guess, unless the
    stream's ALGO_UPDATE "aq" said its stop executed part (tests/test_stop_partly_filled)."""
    held = position()
    assert cause_unheard(held, Decimal("0.3"), None)
    assert not cause_unheard(held, Decimal("0.3"), None, frozenset({OrderRole.STOP_LOSS}))
    assert not cause_unheard(held, Decimal("0.3"), [fill(Side.BUY, "0.5"),
                                                    fill(Side.SELL, "0.2")])


def test_an_unsaid_reduction_is_said_unknown_once_then_dropped_after_a_read_lacking_it(
        ) -> None:
    """Past the wait: said without a cause, once; outside a ban a read still lacking the
    fill ends the wait (no more reads, nothing guessed); inside a ban it keeps waiting."""
    held = position()
    unsaid = UnsaidReductions()
    now = held.opened_at
    assert unsaid.hold(held, Decimal("0.3"), True, now)
    smaller = replace(held, quantity=Decimal("0.3"))
    assert unsaid.settle(smaller, True, OUTSIDE, None, now, keep_waiting=True) is None
    later = now + WAIT_FOR_FILL
    alert = unsaid.settle(smaller, True, OUTSIDE, None, later, keep_waiting=True)
    assert alert is not None and UNKNOWN in alert.text and "outside" not in alert.text
    assert unsaid.settle(smaller, True, OUTSIDE, None, later, keep_waiting=True) is None
    assert SYMBOL in unsaid
    assert unsaid.settle(smaller, True, OUTSIDE, None, later, keep_waiting=False) is None
    assert SYMBOL not in unsaid


def test_a_cause_found_after_the_unknown_word_keeps_a_liquidation_critical() -> None:
    held = position()
    unsaid = UnsaidReductions()
    assert unsaid.hold(held, Decimal("0.3"), True, held.opened_at)
    smaller = replace(held, quantity=Decimal("0.3"))
    later = held.opened_at + WAIT_FOR_FILL
    assert unsaid.settle(smaller, True, "", None, later, keep_waiting=True) is not None
    alert = unsaid.settle(smaller, False, "by the exchange (LIQUIDATION)",
                          CloseReason.LIQUIDATION, later, keep_waiting=True)
    assert alert is not None and alert.level is Severity.CRITICAL
    assert alert.text.startswith(f"{SYMBOL}: the LONG reduction from 0.5 to 0.3 was made by "
                                 "the exchange (LIQUIDATION). Binance liquidated part"), alert
    assert not unsaid


def test_an_unsaid_reduction_of_a_closed_position_is_dropped_unsaid() -> None:
    held = position()
    unsaid = UnsaidReductions()
    assert unsaid.hold(held, Decimal("0.3"), True, held.opened_at)
    assert not unsaid.awaits(replace(held, key="nextone"))
    assert not unsaid
