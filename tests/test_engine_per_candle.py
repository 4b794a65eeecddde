"""What the tick does once per closed candle and what it does every tick (trader/engine.py):
the strategy is asked once per candle however many ticks pass, a candle whose entry the
guards refused is asked about again once they allow it, the balance is read when due, and
an API success resets a failure streak without a write on every tick."""

from datetime import timedelta

from tests.engine_world import SYMBOL, long_signal, make_world
from trader import breaker_rules, operator_holds
from trader.guard_state import GuardState
from trader.position import PositionState


async def ticks_within_the_candle(world, count: int) -> None:
    for _ in range(count):
        world.clock.advance(timedelta(seconds=2))
        await world.engine.tick()


async def test_the_strategy_is_asked_once_per_closed_candle_however_many_ticks_pass(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up(30)
    asked = world.strategy.asked
    await world.step()
    await ticks_within_the_candle(world, 5)
    assert world.strategy.asked == asked + 1
    await world.step()
    assert world.strategy.asked == asked + 2


async def test_a_candle_whose_entry_was_refused_is_asked_about_once_entries_resume(tmp_path):
    """Paused through the candle's first ticks: the strategy is not asked (the candle is not
    used up); resumed before the next candle, the next tick asks and enters."""
    world = await make_world(tmp_path)
    await world.warm_up(30)
    world.engine.guard_state = operator_holds.pause(world.engine.guard_state)
    world.strategy.next = long_signal()
    asked = world.strategy.asked
    await world.step()
    await ticks_within_the_candle(world, 3)
    assert world.strategy.asked == asked and SYMBOL not in world.engine.positions
    world.engine.guard_state = operator_holds.resume(world.engine.guard_state)
    await ticks_within_the_candle(world, 1)
    assert world.strategy.asked == asked + 1
    assert world.engine.positions[SYMBOL].state is not PositionState.CLOSED


async def test_the_balance_is_read_when_due_and_on_account_events(tmp_path):
    world = await make_world(tmp_path)
    keeper = world.engine.balance_keeper
    keeper.vouches = None       # the timer as on Binance (the paper exchange vouches for a
    #                             flat account's balance: tests/test_balance_vouched.py)
    assert keeper.due(account_events=False)              # never read yet
    await keeper.refresh()
    assert not keeper.due(account_events=False)
    assert keeper.due(account_events=True)               # the stream said something changed
    world.clock.advance(timedelta(seconds=59))
    assert not keeper.due(account_events=False)
    world.clock.advance(timedelta(seconds=1))
    assert keeper.due(account_events=False)              # 60 s while streaming
    world.paper.stream_live = False
    await keeper.refresh()
    world.clock.advance(timedelta(seconds=10))
    assert keeper.due(account_events=False)              # 10 s while polling


async def test_an_api_success_resets_a_failure_streak_and_writes_nothing_without_one(tmp_path):
    world = await make_world(tmp_path)
    book = world.engine.guards
    written: list[GuardState] = []
    book.on_change = lambda before, after, by_command: written.append(after)
    book.record_api_success(world.clock.now())
    assert written == []
    book.apply(breaker_rules.record_api_result, False, world.clock.now(), book.config)
    book.apply(breaker_rules.record_api_result, False, world.clock.now(), book.config)
    assert book.state.api_failures == 2
    book.record_api_success(world.clock.now())
    assert book.state.api_failures == 0 and written[-1].api_failures == 0


async def test_the_account_is_built_only_for_a_signal_to_plan(tmp_path, monkeypatch):
    """Building it walks the open positions and their risk: most candles give no signal."""
    world = await make_world(tmp_path)
    await world.warm_up(30)
    built: list[object] = []
    account = world.engine.entries.account

    def counted(*args):  # type: ignore[no-untyped-def]
        built.append(args)
        return account(*args)

    monkeypatch.setattr(world.engine.entries, "account", counted)
    for _ in range(5):
        await world.step()
    assert built == []                      # asked five times, no signal: never built
    world.strategy.next = long_signal()
    await world.step()
    assert len(built) == 1 and SYMBOL in world.engine.positions
