"""Our own position picked up on a wiped disk: the volatility-regime rule only ever tightens
its stop (trader/regime_adjust.py, `Position.picked_up`).

Found by review 11 (h-review11, /work/notes/rv11-scripts/
test_rv11_wiped_disk_regime_loosens_stop.py): the operator's /sl 4 % below the entry (looser
than the 2 % plan) was moved to 4.6 % (96,010.5 -> 95,395) by HIGH then EXTREME after a wiped
restart. The pickup (trader/reconcile.py `adopted_position`) sets no `operator_stop`,
`trailing_active` or `breakeven_done` (the wiped record no longer tells them), the regime rule
anchored the position at its current legs and then took the stop for its own. A trailed stop
still below the entry went the same way. On the same process, or a restart on the kept
database, the /sl level stays (tests/test_sl_kept_by_the_regime_rule.py; the negatives
below)."""

from dataclasses import replace
from decimal import Decimal

from tests.engine_world import SYMBOL, World, long_signal, make_world, restart
from tests.test_rules_regime import MARK, RULES, long_position, violent_candle
from tests.test_wiped_disk_keeps_the_exit_plan import wiped
from trader.commands import CommandKind
from trader.regime_adjust import follow
from trader.startup import boot
from trader.strategy.regime import Regime

D = Decimal
LONG_TIME = {"TRADEBOT_TIME_IN_TRADE_MINUTES": "60"}     # no time exit in 12 candles


async def operator_sl_at_4_percent(tmp_path) -> tuple[World, Decimal, Decimal]:
    """A calm long (stop 2 %, target 4 %), the operator's /sl at 4 % below the entry."""
    world = await make_world(tmp_path, **LONG_TIME)
    await world.warm_up()
    world.strategy.next = long_signal("0.02", "0.04")
    await world.step()
    entry = world.engine.positions[SYMBOL].entry_price
    level = world.paper.rules(SYMBOL).round_price(entry * D("0.96"), up=False)
    assert (await world.command(CommandKind.SL, symbol=SYMBOL, price=level)).ok
    return world, entry, level


async def stops_through_violent_candles(world: World, entry: Decimal) -> tuple[
        list[Decimal], set[str]]:
    """The stop on the exchange after each of 8 violent candles, and the regimes seen."""
    for candle in world.candles:          # the history a live boot reads (GET klines)
        world.engine.on_candle(candle)
    levels, regimes = [], set()
    for _ in range(8):
        await violent_candle(world, entry)
        regimes.add(world.engine.counters.get(SYMBOL, "regime_state"))
        [stop] = [o for o in await world.open_orders() if o.role.value == "sl"]
        assert stop.trigger_price is not None
        levels.append(stop.trigger_price)
    return levels, regimes


async def test_an_operator_sl_is_never_loosened_by_the_regime_after_a_wiped_restart(tmp_path):
    world, entry, level = await operator_sl_at_4_percent(tmp_path)
    world = await wiped(world, tmp_path, **LONG_TIME)
    assert world.engine.positions[SYMBOL].picked_up
    levels, regimes = await stops_through_violent_candles(world, entry)
    assert {"HIGH", "EXTREME"} & regimes, regimes
    assert min(levels) >= level, f"the /sl level {level} loosened to {min(levels)} ({regimes})"


async def test_negative_a_restart_on_the_kept_database_keeps_the_operator_sl(tmp_path):
    world, entry, level = await operator_sl_at_4_percent(tmp_path)
    world = restart(world, **LONG_TIME)
    await boot(world.engine)
    assert not world.engine.positions[SYMBOL].picked_up
    levels, _ = await stops_through_violent_candles(world, entry)
    assert set(levels) == {level}


def test_a_picked_up_stop_takes_a_tighter_regime_level_and_never_a_looser_one() -> None:
    """Anchored where the pickup found it (NORMAL, stop 49,000): HIGH and EXTREME would
    widen it, so it stays; LOW tightens it (x0.8: 49,200), and NORMAL after does not loosen
    it back."""
    position = replace(long_position(), picked_up=True)
    for regime, stop in ((Regime.HIGH, D("49000")), (Regime.EXTREME, D("49000")),
                         (Regime.LOW, D("49200")), (Regime.NORMAL, D("49200"))):
        position = follow(position, regime, MARK, RULES)
        assert position.stop.trigger_price == stop, regime


def test_negative_a_stop_of_the_agent_s_plan_still_follows_the_regime_both_ways() -> None:
    """Not picked up (the record knows the stop is the plan's): widened and back."""
    position = long_position()
    for regime, stop in ((Regime.EXTREME, D("48500")), (Regime.NORMAL, D("49000"))):
        position = follow(position, regime, MARK, RULES)
        assert position.stop.trigger_price == stop, regime
