"""A market close whose answer was lost (a 503 / -1000 "unknown error", a timeout: the
request may or may not have reached the book) is not sent again while it may still land:
it is probed by client id at each attempt until it is known (ARCHITECTURE, exchange-action
rules: nothing is re-sent blind; the executor's `probe`).

Found by a reviewer: fl1 timed out and fl2 went out 25 ms later, with no probe in between;
under a 503 outage a third close went out while the first two were still unknown. Every
close is reduce-only, yet one that lands late after a new entry in the same direction
closes that entry.

Through python-binance against the fake Binance, which answers POST /fapi/v1/order with
HTTP 503, code -1000, without placing the order (https://developers.binance.com/docs/
derivatives/usds-margined-futures/general-info, "HTTP 503 ... the API successfully sent the
message but not get a response within the timeout period ... execution status is
UNKNOWN")."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.binance_harness import SYMBOL
from tests.positions import KEY, leg_id, make
from tests.stream_ahead import a_world
from trader import executor as executor_module
from trader.domain import CloseReason, OrderRole, Side
from trader.events import Flatten, FlattenResult, Policy, PositionGone
from trader.evolve import evolve
from trader.exchange_actions import ActionRunner
from trader.lifecycle import step
from trader.position import PositionState

QUANTITY = Decimal("0.010")
FIRST, SECOND, THIRD = (leg_id(SYMBOL, OrderRole.FLATTEN, seq, key=KEY) for seq in (1, 2, 3))
NOW = datetime(2024, 5, 1, tzinfo=UTC)


async def test_a_close_whose_answer_was_lost_is_probed_not_sent_again(tmp_path, monkeypatch):
    async with a_world(tmp_path, long=QUANTITY) as world:
        opened = await world.exchange.position(SYMBOL)
        position = make(SYMBOL, Side.BUY, PositionState.CLOSING, QUANTITY, opened.entry_price,
                        "49000", "51000")
        runner = ActionRunner(world.exchange, world.executor, world.tracker, world.clock)
        world.fake.inject_fault("POST /fapi/v1/order", code=-1000, http_status=503)

        first = await runner.flatten(position, Flatten(CloseReason.MANUAL, QUANTITY, FIRST))
        assert first.events == [FlattenResult(QUANTITY, in_flight=FIRST)], first.events

        again = await runner.flatten(position, Flatten(CloseReason.MANUAL, QUANTITY, SECOND))
        assert again.events == [FlattenResult(QUANTITY, in_flight=FIRST)], again.events
        assert len(world.fake.requests("POST /fapi/v1/order")) == 1, "sent again, blind"
        assert world.fake.requests("GET /fapi/v1/order"), "the lost close was not probed"

        # Past recvWindow and the grace, the lost close can no longer land: a new one goes.
        monkeypatch.setattr(executor_module, "PROBE_GRACE", timedelta(seconds=-3600))
        done = await runner.flatten(position, Flatten(CloseReason.MANUAL, QUANTITY, THIRD))
        assert done.events == [FlattenResult(Decimal(0)), PositionGone()], done.events
        assert len(world.fake.requests("POST /fapi/v1/order")) == 2


async def test_a_close_that_answered_is_not_probed_first(tmp_path):
    """The negative: with nothing in flight, a close is sent at once, as before."""
    async with a_world(tmp_path, long=QUANTITY) as world:
        opened = await world.exchange.position(SYMBOL)
        position = make(SYMBOL, Side.BUY, PositionState.CLOSING, QUANTITY, opened.entry_price,
                        "49000", "51000")
        runner = ActionRunner(world.exchange, world.executor, world.tracker, world.clock)
        done = await runner.flatten(position, Flatten(CloseReason.MANUAL, QUANTITY, FIRST))
        assert done.events == [FlattenResult(Decimal(0)), PositionGone()], done.events
        assert not world.fake.requests("GET /fapi/v1/order")


def test_a_close_in_flight_sends_nothing_and_spends_no_attempt():
    """The state machine: a FlattenResult naming a close in flight asks for no new close and
    leaves the attempts where they were before the one not sent (the give-up after
    `flatten_attempts` counts closes sent, not ticks waited)."""
    position = make(SYMBOL, Side.BUY, PositionState.CLOSING, QUANTITY, "50000", "49000",
                    "51000")
    position = evolve(position, close_attempts=2, closing_reason=CloseReason.MANUAL)
    stepped = step(position, FlattenResult(QUANTITY, in_flight=FIRST), NOW, Policy())
    assert not [action for action in stepped.actions if isinstance(action, Flatten)]
    assert stepped.position.state is PositionState.CLOSING
    assert stepped.position.close_attempts == 1
    # the negative: a close that left some of it open is followed by another
    more = step(position, FlattenResult(QUANTITY), NOW, Policy())
    assert [action for action in more.actions if isinstance(action, Flatten)]


def test_a_close_whose_read_back_failed_sends_nothing_and_keeps_its_reason():
    """A close taken whose position could not be read back (`unread`): like one in flight,
    no new close, no attempt spent, CLOSING kept with its reason however many ticks wait
    (each tick's retry finds it so again); the give-up counts refusals only."""
    position = make(SYMBOL, Side.BUY, PositionState.CLOSING, QUANTITY, "50000", "49000",
                    "51000")
    position = evolve(position, close_attempts=1, closing_reason=CloseReason.COMMAND)
    for _ in range(2 * Policy().flatten_attempts):
        retried = step(position, FlattenResult(QUANTITY), NOW, Policy())     # the tick's
        [close] = [action for action in retried.actions if isinstance(action, Flatten)]
        position = step(retried.position, FlattenResult(QUANTITY, unread=True), NOW,
                        Policy()).position
        assert position.state is PositionState.CLOSING
        assert position.closing_reason is CloseReason.COMMAND
        assert position.close_attempts == 1
