"""The process does not die of one bad thing: a failure inside one symbol's tick, one
operator command, one housekeeping job, one exchange read or one write is caught at that
boundary, logged, alerted, and the engine goes on protecting and answering /status.

Real engine, paper exchange, file database; failures are injected by replacing one step
with a function that raises (the boundary is what is under test, not the failure)."""

from decimal import Decimal

import pytest

from tests.engine_world import SYMBOL, long_signal, make_world
from trader import operator_holds
from trader.commands import CommandKind
from trader.domain import OrderType
from trader.exchange.base import CircuitOpen, ExchangeError, UnknownOutcome


async def open_long(world):
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    return world.engine.positions[SYMBOL]


async def run(world, kind: CommandKind, **fields):
    """Send a command the way the bot does and let the engine run it between ticks."""
    return await world.command(kind, **fields)


def raising(error: BaseException, times: int = 1):
    """A stand-in for one step that fails `times` times, then does what the real one does."""
    calls = {"n": 0}

    def wrap(real):
        async def step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] <= times:
                raise error
            return await real(*args, **kwargs)
        return step
    return wrap


def failing_first(error: BaseException, times: int = 1):
    """`raising` for a plain (not async) step."""
    calls = {"n": 0}

    def wrap(real):
        def step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] <= times:
                raise error
            return real(*args, **kwargs)
        return step
    return wrap


async def stop_orders(world):
    return [o for o in await world.open_orders() if o.type is OrderType.STOP_MARKET]


async def assert_alive_and_protecting(world) -> None:
    await world.step()
    status = await run(world, CommandKind.STATUS)
    assert status.ok and status.status is not None
    if SYMBOL in world.engine.positions:
        assert len(await stop_orders(world)) == 1


async def test_an_unexpected_error_in_a_symbols_tick_is_alerted_and_the_engine_goes_on(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)

    def broken_book(symbol: str):
        raise KeyError("orderType")

    world.engine.view.pushed_book = broken_book
    await world.step()
    errors = world.alerts("ERROR")
    assert errors and "KeyError" in errors[0] and "tick BTCUSDT" in errors[0]
    await assert_alive_and_protecting(world)


async def test_a_read_that_fails_after_its_retries_skips_the_symbol_for_this_tick(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    sent = world.sent
    burst = ExchangeError(-1000, "Unknown error, please check your request", http_status=503)
    world.paper.stream_live = False      # polling: every tick reads the position over REST
    world.paper.position = raising(burst, times=2)(world.paper.position)
    await world.step()
    await world.step()
    assert world.sent == sent, "no action without a fresh view of the exchange"
    assert "503" in (world.engine.last_error or "")
    assert world.alerts("ERROR") == [], "an exchange outage is not a bug report"
    await assert_alive_and_protecting(world)


async def test_the_balance_read_failing_does_not_stop_the_tick(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    world.engine.balance_at = None
    world.paper.balance = raising(UnknownOutcome("account: timeout"), times=10)(
        world.paper.balance)
    await world.step()
    await assert_alive_and_protecting(world)


async def test_a_failing_housekeeping_job_skips_only_itself(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    housekeeping = world.engine.housekeeping
    # the funding job's own step, whether the rate was pushed or read over REST
    housekeeping._funding_sample = failing_first(ZeroDivisionError("funding"), times=5)(
        housekeeping._funding_sample)
    housekeeping.due_at.clear()
    await world.step()
    assert any("funding check" in text for text in world.alerts("ERROR"))
    assert "telemetry" in housekeeping.due_at, "the jobs after the failing one still ran"
    await assert_alive_and_protecting(world)


async def test_a_command_that_fails_answers_what_happened_instead_of_silence(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    runner = world.engine.interpreter.runner
    runner.flatten = raising(RuntimeError("boom"))(runner.flatten)
    result = await run(world, CommandKind.CLOSE, symbol=SYMBOL)
    assert not result.ok
    text = "\n".join(result.lines)
    assert "close failed" in text and "boom" in text and f"send /close {SYMBOL} again" in text
    assert f"{SYMBOL}: still open" in text and "protected by its stop-loss" in text
    await assert_alive_and_protecting(world)
    again = await run(world, CommandKind.CLOSE, symbol=SYMBOL)
    assert again.ok and SYMBOL not in world.engine.positions


async def test_a_close_whose_sibling_cancel_fails_is_recorded_reported_and_swept(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    # Binance does not document whether resting reduce-only orders outlive their position;
    # here they do (the simulator's default expires them).
    world.paper.sim._expire_orphans = lambda symbol, now: []
    executor = world.engine.executor
    executor.cancel_and_verify = raising(ExchangeError(-1001, "Internal error", 503), times=1)(
        executor.cancel_and_verify)
    result = await run(world, CommandKind.CLOSE, symbol=SYMBOL)
    text = "\n".join(result.lines)
    assert result.ok and "closed at" in text
    assert "could not cancel" in text and "will retry" in text
    assert world.store.closed_positions()[-1].key == position.key
    assert await world.open_orders() != [], "the leftover is still there before the next tick"
    await world.step()
    assert await world.open_orders() == [], "a flat symbol keeps no order of ours"


@pytest.mark.parametrize("asleep", [False, True])
async def test_a_leftover_take_profit_on_a_flat_symbol_is_cancelled_on_the_next_tick(tmp_path,
                                                                                    asleep):
    world = await make_world(tmp_path)
    position = await open_long(world)
    # A crash between "position closed" and "siblings cancelled": the record is gone, the
    # take-profit is still on the exchange (resting orders outlive the position here).
    world.paper.sim._expire_orphans = lambda symbol, now: []
    world.paper.publish(world.paper.sim.place(_take_profit_like(position), world.clock.now())[1])
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    world.engine.positions.pop(SYMBOL)
    if asleep:
        world.engine.guard_state = operator_holds.sleep(world.engine.guard_state)
    assert await world.open_orders()
    await world.step()
    assert await world.open_orders() == []


def _take_profit_like(position):
    from trader.domain import OrderRequest, OrderRole, Side
    return OrderRequest(SYMBOL, Side.SELL, OrderType.TAKE_PROFIT_MARKET, position.quantity,
                        f"tb-{SYMBOL}-{position.key}-tp9", OrderRole.TAKE_PROFIT,
                        trigger_price=position.take_profit.trigger_price, reduce_only=True)


async def test_a_failed_alert_write_raises_save_state_failure_within_one_tick(tmp_path):
    world = await make_world(tmp_path)
    await open_long(world)
    # Only the alert outbox fails (a trigger refuses inserts), nothing else.
    world.store.db.execute("CREATE TRIGGER outbox_broken BEFORE INSERT ON alerts "
                           "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    world.paper.publish(world.paper.sim.close_by_hand(SYMBOL, world.clock.now()))
    await world.step()        # the CLOSE alert cannot be written
    unsaved = {a.name for a in world.engine.alerter.take_unsaved()}
    assert "CLOSE" in unsaved
    assert "SAVE_STATE_FAILURE" in unsaved
    assert world.engine.guard_state.save_failure
    assert not world.engine.entry_allowed(SYMBOL)


@pytest.mark.parametrize("what", ["intent", "position", "fill"])
async def test_any_failed_write_counts_for_the_save_failure_monitor(tmp_path, what):
    world = await make_world(tmp_path)
    await world.warm_up()
    table = {"intent": "intents", "position": "positions", "fill": "fills"}[what]
    world.store.db.execute(f"CREATE TRIGGER broken_{table} BEFORE INSERT ON {table} "
                           "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    world.strategy.next = long_signal()
    await world.step()
    await world.step()
    assert world.store.health.total_failures > 0
    names = {a.name for a in world.engine.alerter.take_unsaved()} | {
        a.name for a in world.store.recent_alerts(50)}
    assert "SAVE_STATE_FAILURE" in names


# --- closes the exchange makes --------------------------------------------------------------

@pytest.mark.parametrize(("client_id", "reason"), [
    ("autoclose-1700000000000", "LIQUIDATION"),
    ("adl_autoclose", "ADL"),
    ("settlement_autoclose-1700000000000", "SETTLEMENT"),
])
async def test_a_close_by_the_exchange_is_recorded_and_alerted_as_what_it_was(tmp_path,
                                                                             client_id, reason):
    world = await make_world(tmp_path)
    await open_long(world)
    world.paper.publish(world.paper.sim.close_by_exchange(SYMBOL, world.clock.now(), client_id))
    await world.step()
    closed = world.store.closed_positions()[-1]
    assert closed.close_reason.value == reason
    alerts = world.alerts("EXCHANGE_CLOSE")
    assert alerts and reason in alerts[0] and "PnL -" in alerts[0]
    assert not any("MANUAL" in text for text in world.alerts("CLOSE"))
    assert [a for a in world.store.recent_alerts(50) if a.name == "EXCHANGE_CLOSE"][0].severity \
        == "CRITICAL"


async def test_a_partial_adl_is_reported_as_a_size_change_by_the_exchange(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    part = (position.quantity * 2 / 5).quantize(Decimal("0.001"))
    world.paper.publish(world.paper.sim.close_by_exchange(SYMBOL, world.clock.now(),
                                                          "adl_autoclose", part))
    await world.step()
    reduced = world.alerts("POSITION_REDUCED")
    assert reduced and "by the exchange (ADL)" in reduced[0]
    assert world.engine.positions[SYMBOL].quantity == position.quantity - part


async def test_a_stop_that_fills_in_part_is_alerted_and_the_rest_stays_protected(tmp_path):
    world = await make_world(tmp_path)
    position = await open_long(world)
    part = world.fill_stop_in_part(position)
    await world.step()
    await world.step()
    reduced = world.alerts("POSITION_REDUCED")
    assert reduced and "partial fill of its stop-loss" in reduced[0]
    left = position.quantity - part
    legs = sorted((o.type.value, o.quantity - o.filled_qty) for o in await world.open_orders())
    assert legs == [("STOP_MARKET", left), ("TAKE_PROFIT_MARKET", left)]


@pytest.mark.parametrize(("error", "reads"), [
    (CircuitOpen(9.2, "rate limited (HTTP 429, code -1003) on place order symbol=BTCUSDT "
                 "client_id=tb-BTCUSDT-k-fl1 role=fl"),
     "close BTCUSDT: not sent: Binance rate limit (HTTP 429), nothing is sent for 10 s more"),
    (CircuitOpen(30, "IP banned (HTTP 418, code -1003) on account", http_status=418),
     "close BTCUSDT: not sent: Binance IP ban (HTTP 418), nothing is sent for 30 s more"),
    (ExchangeError(-2019, "Margin is insufficient."),
     "close BTCUSDT: Binance error -2019 (HTTP 400): Margin is insufficient."),
], ids=["429", "418", "refusal"])
async def test_the_last_error_reads_as_words_on_the_phone(tmp_path, error, reads):
    """/status's "Last error" and a failed /close showed the exception's class and its log
    text ("close BTCUSDT: CircuitOpen: code=-1003 http=429 not sent: API circuit open for
    10.0s more (rate limited ... client_id=tb-... role=fl)", found by a reviewer). Exchange
    errors now read as what Binance said; the log keeps the detail."""
    world = await make_world(tmp_path)

    async def failing() -> None:
        raise error

    await world.engine.contained("close BTCUSDT", failing(), SYMBOL)
    assert world.engine.last_error == reads


async def test_an_unexpected_error_keeps_its_type_in_the_last_error(tmp_path):
    """The negative: a bug reads as before, its type first (what a bug report needs)."""
    world = await make_world(tmp_path)

    async def failing() -> None:
        raise KeyError("orderId")

    await world.engine.contained("tick BTCUSDT", failing(), SYMBOL)
    assert world.engine.last_error == "tick BTCUSDT: KeyError: 'orderId'"
