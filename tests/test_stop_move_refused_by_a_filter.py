"""A stop move Binance refuses with a filter error (the level is past PRICE_FILTER's
maxPrice: -4007 "Stop price greater than max price.", or any other filter failure that
re-reading the rules did not cure) is not retried: the same level would be refused again,
every 2..25 s, forever, while the operator believed the move happened. The old stop stays
(never a moment without a stop, and it is never cancelled for a refused move), the leg's
plan goes back to it, and one PROTECTION alert says the move was refused and why.

Codes: https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code
(40xx, "Filters and other Issues")."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL
from tests.test_alert_texts_formatted import OPENED, RULES, SL, apply, position, texts
from trader.alerts import AlertName
from trader.domain import OrderRole
from trader.events import (
    CancelOrder,
    LegGone,
    LegPlaced,
    LegRejected,
    PlaceLeg,
    StopMoveRequested,
    Tick,
)
from trader.exchange.base import ExchangeError
from trader.exchange.errors import Outcome, classify

D = Decimal
MAX_PRICE = "-4007 STOP_PRICE_GREATER_THAN_MAX_PRICE: stop price greater than max price"


def moved_and_refused(reason: str = MAX_PRICE, filter_refused: bool = True):  # type: ignore[no-untyped-def]
    record, _ = apply(position(), StopMoveRequested(D("49900.00")))
    new_id = record.stop.pending
    assert new_id is not None
    record, actions = apply(record, LegRejected(SL, new_id, reason,
                                                filter_refused=filter_refused))
    return record, actions


def test_a_move_refused_by_a_filter_goes_back_to_the_old_stop_with_one_alert():
    record, actions = moved_and_refused()
    stop = record.stop
    assert stop.order is not None and stop.order.trigger_price == D("49790.00")
    assert stop.trigger_price == D("49790.00")            # the plan is the live stop again
    assert stop.pending is None and stop.retry_at is None
    assert texts(actions, AlertName.PROTECTION) == [
        f"{SYMBOL}: Binance refused the stop-loss at 49,900 ({MAX_PRICE}); the stop-loss "
        "stays at 49,790. Send /sl with another level to move it"]
    assert texts(actions, AlertName.POSITION_UNPROTECTED) == []


def test_a_move_refused_by_a_filter_is_not_sent_again():
    record, _ = moved_and_refused()
    for seconds in (3, 30, 300):                            # past every retry of the schedule
        record, actions = apply(record, Tick(OPENED + timedelta(seconds=seconds), None, RULES),
                                seconds=seconds)
        assert not [a for a in actions if isinstance(a, PlaceLeg)], actions
        assert texts(actions, AlertName.PROTECTION) == [], actions
    assert texts(actions, AlertName.PROTECTION_RESTORED) == []   # nothing to restore


def test_a_refused_move_never_cancels_the_old_stop():
    """Negative: neither the refusal nor the ticks after it cancel the stop that protects."""
    old_id = position().stop.order.client_id  # type: ignore[union-attr]
    record, actions = moved_and_refused()
    for seconds in (3, 30):
        record, more = apply(record, Tick(OPENED + timedelta(seconds=seconds), None, RULES),
                             seconds=seconds)
        actions += more
    assert [a for a in actions if isinstance(a, CancelOrder)] == []
    assert record.stop.order is not None and record.stop.order.client_id == old_id


def test_a_refusal_that_is_no_filter_error_is_still_retried():
    """A rate limit or a margin refusal may pass: the move is retried on the schedule."""
    record, _ = moved_and_refused("-2019 MARGIN_NOT_SUFFICIENT", filter_refused=False)
    assert record.stop.trigger_price == D("49900.00") and record.stop.retry_at is not None


# --- the kind, in the error table ---------------------------------------------------------------

@pytest.mark.parametrize("code", [-4007, -4006, -4002, -4013, -4014, -1013, -1111])
def test_a_filter_failure_is_classified_as_refused_by_a_filter(code):
    """The kind, not one code: every code whose policy re-reads the rules and resends once
    (Retry.REFRESH_RULES) is, when it comes back, a refusal the same order meets again."""
    verdict = classify(ExchangeError(code, "Filter failure"), OrderRole.STOP_LOSS)
    assert verdict.filter_refused and verdict.outcome is Outcome.FAILED


@pytest.mark.parametrize(("code", "status"), [(-2019, 400), (-2021, 400), (-1003, 429),
                                              (-2010, 400), (-1000, 500)])
def test_refusals_that_may_pass_are_not_filter_refusals(code, status):
    verdict = classify(ExchangeError(code, "refused", http_status=status), OrderRole.STOP_LOSS)
    assert not verdict.filter_refused


def test_after_a_refused_move_the_next_move_is_placed_as_usual():
    """Cleanly back: no retry timer, no failure run, no owed all-clear stands in the way."""
    record, _ = moved_and_refused()
    record, actions = apply(record, StopMoveRequested(D("49850.00")), seconds=1)
    [place] = [a for a in actions if isinstance(a, PlaceLeg)]
    assert place.trigger_price == D("49850.00")
    record, actions = apply(record, LegPlaced(SL, place.client_id, D("49850.00"), D("0.500")),
                            seconds=1)
    assert [a.client_id for a in actions if isinstance(a, CancelOrder)] == [
        position().stop.order.client_id]  # type: ignore[union-attr]
    assert texts(actions, AlertName.PROTECTION_RESTORED) == []


def test_a_stop_with_nothing_else_protecting_is_retried_even_after_a_filter_refusal():
    """Never without a stop: with no old order covering the position there is nothing to
    keep, so the placement goes on being retried (and the position is called unprotected)."""
    record, _ = apply(position(), LegGone(SL, position().stop.order.client_id, True,  # type: ignore[union-attr]
                                          status="CANCELED"))
    replacement = record.stop.pending
    assert replacement is not None
    record, actions = apply(record, LegRejected(SL, replacement, MAX_PRICE, filter_refused=True))
    assert record.stop.retry_at is not None and record.stop.order is None
    assert texts(actions, AlertName.POSITION_UNPROTECTED), actions


# --- the size, not the level: LOT_SIZE's minQty raised above the position (rv16, script 05)

MIN_QTY = "-1013 INVALID_MESSAGE: a filter failure (price, quantity or notional off the " \
          "symbol's filters)"


def test_a_move_refused_for_the_size_does_not_advise_another_level():
    """Binance raised LOT_SIZE's minQty above the position's size: every stop for it is
    refused whatever its level, so "Send /sl with another level" would send the operator
    after a level that cannot pass. The alert says the size is what is refused."""
    record, _ = apply(position(), StopMoveRequested(D("49900.00")))
    new_id = record.stop.pending
    assert new_id is not None
    record, actions = apply(record, LegRejected(SL, new_id, MIN_QTY, filter_refused=True,
                                                min_qty=D("2")))
    assert record.stop.order is not None and record.stop.trigger_price == D("49790.00")
    [text] = texts(actions, AlertName.PROTECTION)
    assert "another level" not in text
    assert record.quantity == D("0.5")
    assert "the stop-loss stays at 49,790. No level can pass: the position's size 0.5 is " \
           "below Binance's minimum order quantity 2 (LOT_SIZE)." in text


async def test_the_minimum_quantity_raised_above_the_position_is_said_end_to_end(tmp_path):
    """Through the real engine and python-binance: /sl refused by the fake with Binance's
    filter failure once minQty is above the position; the alert names the size."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from tests.fakes.binance_harness import eventually
    from tests.test_first_command_after_boot import streaming_agent
    from trader.commands import Command, CommandKind

    async with streaming_agent(tmp_path) as (fake, agent):
        engine = agent.engine
        assert (await agent.run(CommandKind.LONG)).ok
        for _ in range(20):
            await engine.tick()
            if engine.positions[SYMBOL].stop.order is not None:
                break
        held = fake.sim.position(SYMBOL).quantity
        rules = fake.sim.rules_for(SYMBOL)
        least = (held * 2).quantize(rules.step_size)
        fake.sim.set_rules(replace(rules, min_qty=least, market_min_qty=least))
        stop = engine.positions[SYMBOL].stop.trigger_price
        result = await agent.controller.run(Command(CommandKind.SL, "tg:1:99",
                                                    datetime.now(UTC), symbol=SYMBOL,
                                                    price=stop - D("50")))
        assert not result.ok

        def protection() -> list[str]:
            return [a.text for a in engine.store.recent_alerts(20)
                    if a.name == AlertName.PROTECTION.value]
        assert await eventually(lambda: bool(protection()), timeout=5), result.lines
        [text] = protection()
        assert "another level" not in text
        assert f"below Binance's minimum order quantity {least.normalize():f}" in text
