"""The tick's glue skips a collaborator's call only when that call would have returned at
once (trader/engine.py `_tick`, `tick_symbol`; trader/housekeeping.py's pushed funding):
each test makes the skipped work due and checks that it still runs."""

import asyncio
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_world import SYMBOL, make_world
from trader import breaker_rules
from trader.exchange.base import CircuitState
from trader.housekeeping import FUNDING_MEMORY, Housekeeping

D = Decimal


async def test_an_open_circuit_is_still_announced_and_its_end_too(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    now = world.clock.now()
    world.paper.circuit = lambda: CircuitState(now + timedelta(hours=1), "rate limited",
                                               now)
    await world.step()
    assert len(world.alerts("API_CIRCUIT_OPEN")) == 1
    world.paper.circuit = lambda: CircuitState(None)
    await world.step()
    assert len(world.alerts("API_CIRCUIT_CLOSED")) == 1


async def test_failing_writes_are_still_probed_and_reported_by_the_tick(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    health = world.store.health
    health.in_a_row, health.pending_alert = 1, True     # as a failed write leaves it
    await world.step()
    assert world.engine.guard_state.save_failure, "the failure was reported: entries blocked"
    assert not health.failing, "the tick's probe write succeeded"
    await world.step()
    assert world.alerts("SAVE_STATE_RECOVERED")
    assert not world.engine.guard_state.save_failure


async def test_a_streak_of_api_failures_is_still_reset_by_a_tick(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    book = world.engine.guards
    book.set(replace(book.state, api_failures=2))
    await world.step()
    assert book.state.api_failures == 0


async def test_rules_changes_are_still_alerted_by_the_tick(tmp_path) -> None:
    world = await make_world(tmp_path)
    await world.warm_up(3)
    world.engine.executor.rules_changes.append(f"{SYMBOL}: tick size 0.1 -> 0.5")
    await world.step()
    assert world.alerts("SYMBOL_RULES") == [f"trading rules changed: {SYMBOL}: tick size "
                                            "0.1 -> 0.5"]
    assert world.engine.executor.rules_changes == []


async def test_a_symbol_without_a_pushed_funding_rate_is_read_over_rest(tmp_path) -> None:
    """The housekeeping's pushed-rate path is not taken when a rate was not pushed."""
    world = await make_world(tmp_path)
    await world.warm_up(3)
    housekeeping = world.engine.housekeeping
    asked: list[str] = []

    async def rate(symbol: str) -> Decimal:
        asked.append(symbol)
        return D("0.0003")

    world.paper.quote = lambda symbol, max_age: None      # nothing pushed (streams down)
    world.paper.funding_rate = rate
    housekeeping.due_at.pop("funding", None)              # due now
    await housekeeping.run(world.engine.positions, world.engine.balance)
    assert asked == [SYMBOL]
    assert housekeeping.funding_seen[SYMBOL][-1] == (world.clock.now(), D("0.0003"))


RATES = st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["0.0001", "0.0002", "0.005"])),
                 min_size=1, max_size=40)


class ListedFunding(Housekeeping):
    """`check_funding`'s samples as they were: the hour-old ones dropped one by one by
    `now - at > FUNDING_MEMORY`, the rule applied unless the rate equals the hour-old one."""

    def _funding_sample(self, symbol: str, rate: Decimal, now: datetime) -> None:
        seen = self.funding_seen.setdefault(symbol, [])
        seen.append((now, rate))
        while now - seen[0][0] > FUNDING_MEMORY:
            del seen[0]
        hour_ago, config = seen[0][1], self.guards.config
        if rate == hour_ago and config.funding_jump >= 0:
            return
        self.guards.apply(breaker_rules.check_funding, symbol, rate, hour_ago, now, config)


async def _played(folder: Path, housekeeping_class: type[Housekeeping],
                  steps: list[tuple[int, str]]) -> list[tuple[dict, list]]:
    world = await make_world(folder)
    housekeeping = world.engine.housekeeping
    housekeeping.__class__ = housekeeping_class
    pushed = SimpleNamespace(funding_rate=D("0.0001"))
    world.paper.quote = lambda symbol, max_age: pushed
    states = []
    for minutes, rate in steps:
        world.clock.set(world.clock.now() + timedelta(minutes=minutes))
        pushed.funding_rate = D(rate)
        assert housekeeping.check_pushed_funding() is None, "every rate was pushed"
        states.append((dict(world.engine.guard_state.breakers),
                       list(housekeeping.funding_seen[SYMBOL])))
    world.store.close()
    return states


@settings(max_examples=30, deadline=None)
@given(RATES)
def test_pushed_funding_samples_keep_what_the_listed_samples_kept(steps) -> None:
    """The hour-old samples dropped by one precomputed cutoff (`at < now - FUNDING_MEMORY`)
    leave the same samples, and trip the same breakers, as `now - at > FUNDING_MEMORY`."""
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        assert asyncio.run(_played(Path(one), Housekeeping, steps)) == \
            asyncio.run(_played(Path(two), ListedFunding, steps))


async def test_a_throttled_or_stale_or_untradable_symbol_still_refuses_entries(tmp_path) -> None:
    """`entry_refusal` asks the throttle and the feed only when something is throttled or
    blocked at all: each kind still refuses, and the other symbols' are not this one's."""
    world = await make_world(tmp_path)
    await world.warm_up(3)
    engine, now = world.engine, world.clock.now()
    assert engine.entry_refusal(SYMBOL) == ""
    engine.executor.throttled_until["ETHUSDT"] = now + timedelta(seconds=30)
    engine.housekeeping.stale.add("ETHUSDT")
    assert engine.entry_refusal(SYMBOL) == "", "another symbol's throttle and feed"
    engine.executor.throttled_until[SYMBOL] = now + timedelta(seconds=30)
    assert engine.entry_refusal(SYMBOL) == f"{SYMBOL} is throttled after an order rejection"
    engine.executor.throttled_until.clear()
    for blocked in (engine.housekeeping.stale, engine.housekeeping.untradable):
        blocked.add(SYMBOL)
        assert engine.entry_refusal(SYMBOL) == f"{SYMBOL}: market data stale or symbol not " \
            "trading"
        blocked.discard(SYMBOL)
    assert engine.entry_allowed(SYMBOL), "ETHUSDT's stay its own"
