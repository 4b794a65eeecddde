"""/sl SYMBOL PRICE moves the stop-loss: put on the tick, refused on the wrong side of the
mark (it would trigger at once), and the new stop is on the exchange before the old one is
cancelled (never a moment without a stop)."""

from decimal import Decimal

from tests.engine_world import SYMBOL, make_world
from tests.log_capture import logged
from tests.test_engine import open_long
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.exchange.base import ExchangeError, UnknownOutcome


async def world_with_a_long(tmp_path):  # type: ignore[no-untyped-def]
    world = await make_world(tmp_path)
    await open_long(world, "0.02", "0.04")
    return world


async def stops(world) -> list:  # type: ignore[no-untyped-def]
    return [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]


def cancels_refused(world) -> list[bool]:  # type: ignore[no-untyped-def]
    """Every cancel refused with Binance's -1001 (HTTP 503) while the switch returned holds
    True; set its item to False to let cancels through."""
    real_cancel, refusing = world.paper.cancel, [True]

    async def cancel(symbol, client_id):  # type: ignore[no-untyped-def]
        if refusing[0]:
            raise ExchangeError(-1001, "Internal error; unable to process your request.",
                                http_status=503)
        return await real_cancel(symbol, client_id)
    world.paper.cancel = cancel
    return refusing


def next_stop_answer_lost(world) -> None:  # type: ignore[no-untyped-def]
    """The next STOP_MARKET placement lands on the exchange but its answer is lost (a 504
    timeout): the agent probes it by client id, never resends."""
    real_place, lost = world.paper.place, [False]

    async def answer_lost(request):  # type: ignore[no-untyped-def]
        order = await real_place(request)
        if request.type is OrderType.STOP_MARKET and not lost[0]:
            lost[0] = True
            raise UnknownOutcome("timeout", http_status=504)
        return order
    world.paper.place = answer_lost


async def test_sl_moves_the_stop_new_first_and_rounds_to_the_tick(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    old = position.stop.order
    mark = (await world.paper.position(SYMBOL)).mark_price or position.entry_price
    wanted = (position.stop.trigger_price + mark) / 2 + Decimal("0.0003")
    placed_before_cancel: list[bool] = []
    real_cancel = world.paper.cancel

    async def cancel(symbol, client_id):  # type: ignore[no-untyped-def]
        live = await stops(world)
        placed_before_cancel.append(any(o.client_id != old.client_id for o in live))
        return await real_cancel(symbol, client_id)
    world.paper.cancel = cancel

    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=wanted)
    assert result.ok, result.lines
    rules = world.paper.rules(SYMBOL)
    level = rules.round_price(wanted, up=False)
    live = await stops(world)
    assert [o.trigger_price for o in live] == [level], live
    assert live[0].client_id != old.client_id
    assert placed_before_cancel == [True]           # the new stop was live first
    assert world.engine.positions[SYMBOL].stop.trigger_price == level
    assert "stop-loss moved to" in result.lines[0] and "on the tick" in result.lines[0]
    assert "was cancelled after it" in result.lines[1], result.lines


async def test_sl_on_the_wrong_side_of_the_mark_is_refused_and_changes_nothing(tmp_path):
    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    before = await stops(world)
    above = position.entry_price * Decimal("1.5")
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=above)
    assert not result.ok
    assert "a LONG's stop must be below the mark price" in result.lines[0], result.lines
    assert await stops(world) == before


async def test_sl_without_a_position_says_so(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=Decimal("100"))
    assert not result.ok and result.lines == [f"{SYMBOL}: stop-loss not moved: no open position"]


async def test_sl_from_the_phone_asks_then_moves_the_stop(tmp_path):
    from tests.fakes.telegram_server import FakeTelegram
    from tests.test_bot_engine import ask_engine, confirm, running_bot

    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    level = world.paper.rules(SYMBOL).round_price(
        (position.stop.trigger_price + position.entry_price) / 2, up=False)
    async with FakeTelegram() as telegram, running_bot(world, telegram):
        with logged("INFO", "telegram ") as lines:
            reply = await confirm(telegram, f"/sl {SYMBOL} {level}", "Move the stop",
                                  "Stop-loss: done")
        # when the command came, when its question went out, the tap: a /sl that seems
        # unanswered (the chaos run) shows in the log whether the agent ever had it
        said = "\n".join(lines)
        for line in ("telegram command received name=sl update_id=1",
                     "telegram command answered name=sl update_id=1 took_s=",
                     "telegram button received update_id=2"):
            assert line in said, said
        assert f"{SYMBOL}: stop-loss moved to" in reply.plain, reply.plain
        assert [o.trigger_price for o in await stops(world)] == [level]
        # On the wrong side of the mark: answered at once, nothing to confirm
        # (tests/test_sl_outside_the_price_filter.py has the same for the price filter)
        wrong = await ask_engine(telegram, f"/sl {SYMBOL} {position.entry_price * 2}",
                                 "would trigger at once")
        assert wrong.plain.startswith(f"{SYMBOL}: stop-loss not moved: a LONG's stop must "
                                      "be below the mark price"), wrong.plain
        assert not wrong.buttons


def test_sl_usage_needs_a_symbol_and_a_price() -> None:
    import pytest

    from bot.parsing import UsageError, parse_command

    assert parse_command("sl", ["btcusdt", "99,400.5"], [SYMBOL]).price == Decimal("99400.5")
    for args in ([SYMBOL], [SYMBOL, "abc"], [SYMBOL, "-5"], [SYMBOL, "0"], ["DOGEUSDT", "1"]):
        with pytest.raises(UsageError):
            parse_command("sl", args, [SYMBOL])


async def test_sl_on_binance_replaces_the_stop_and_leaves_one(tmp_path):
    """The same through the Binance adapter and the fake Binance: one stop-loss on the
    exchange afterwards, at the new level on the tick, the old one gone."""
    from datetime import UTC, datetime

    from tests.fakes.binance_server import FakeBinance
    from tests.test_first_command_after_boot import booted, market_up_to_now
    from trader.commands import Command

    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path) as agent:
            assert (await agent.run(CommandKind.LONG)).ok
            position = agent.engine.positions[SYMBOL]
            old = position.stop.order
            asked = (position.stop.trigger_price + position.entry_price) / 2 + Decimal("0.03")
            result = await agent.controller.run(Command(
                CommandKind.SL, "tg:1:99", datetime.now(UTC), symbol=SYMBOL, price=asked,
                source="telegram"))
            assert result.ok, result.lines
            level = agent.engine.exchange.rules(SYMBOL).round_price(asked, up=False)
            live = [o for o in await agent.engine.exchange.open_orders(SYMBOL)
                    if o.type is OrderType.STOP_MARKET]
            assert [(o.trigger_price, o.client_id != old.client_id) for o in live] \
                == [(level, True)], (live, result.lines)


async def test_sl_of_a_short_rounds_up_and_refuses_a_stop_below_the_mark(tmp_path):
    from tests.engine_world import short_signal

    world = await make_world(tmp_path)
    await world.warm_up()
    world.strategy.next = short_signal("0.02", "0.04")
    await world.step()
    position = world.engine.positions[SYMBOL]
    below = await world.command(CommandKind.SL, symbol=SYMBOL,
                                price=position.entry_price * Decimal("0.9"))
    assert not below.ok and "a SHORT's stop must be above the mark price" in below.lines[0]
    asked = (position.stop.trigger_price + position.entry_price) / 2 + Decimal("0.0003")
    moved = await world.command(CommandKind.SL, symbol=SYMBOL, price=asked)
    assert moved.ok, moved.lines
    level = world.paper.rules(SYMBOL).round_price(asked, up=True)
    assert [o.trigger_price for o in await stops(world)] == [level]


async def test_sl_whose_level_the_price_passes_meanwhile_closes_as_the_stop_would(tmp_path):
    """-2021 on the new stop (the mark crossed the level between the check and the
    placement): closed at market, as that stop would have, and the answer says so."""
    from trader.exchange.base import ExchangeError

    world = await world_with_a_long(tmp_path)
    position = world.engine.positions[SYMBOL]
    real_place, refusals = world.paper.place, [0]

    async def passed(request):  # type: ignore[no-untyped-def]
        if request.type is OrderType.STOP_MARKET and refusals[0] < 2:   # and its one retry
            refusals[0] += 1
            raise ExchangeError(-2021, "Order would immediately trigger.")
        return await real_place(request)
    world.paper.place = passed
    level = (position.stop.trigger_price + position.entry_price) / 2
    result = await world.command(CommandKind.SL, symbol=SYMBOL, price=level)
    assert not result.ok
    assert "before the new stop-loss reached the exchange: the position is closed at market" \
        in result.lines[0], result.lines
    assert (await world.paper.position(SYMBOL)).quantity == 0


def test_sl_prompt_does_not_call_the_asked_level_on_the_tick() -> None:
    """It read 'Move the BTCUSDT stop-loss to 49,300.03 (on the tick)?' for a level that is
    not on the tick: the agent rounds it when it places the stop (trader/control_stop.py)."""
    from datetime import UTC, datetime, timedelta

    from bot.confirm import Confirmation, confirmation_prompt
    asked = Confirmation("n1", CommandKind.SL, 1, datetime(2026, 1, 1, tzinfo=UTC), SYMBOL,
                         price=Decimal("49300.03"))
    text, _ = confirmation_prompt(asked, timedelta(seconds=60))
    assert "(on the tick)" not in text
    assert "49,300.03</b>? The level is put on the symbol's tick (away from the mark)" in text
