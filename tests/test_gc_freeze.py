"""A backtest keeps its setup's objects out of the garbage collector's full passes while it
replays (trader/gc_freeze.py), and gives them back when it ends: a process that runs many
backtests (a sweep's worker) keeps none of them frozen, and a caller's own freeze stays."""

import gc
from pathlib import Path

from trader.backtest import run_backtest
from trader.config import load_settings
from trader.gc_freeze import frozen_setup
from trader.market.replay import load_bundled


class FreezeWatcher:
    """A strategy that never signals and notes how many objects are frozen at each candle."""
    name, warmup = "freeze-watcher", 10

    def __init__(self) -> None:
        self.frozen: list[int] = []

    def signal(self, closed: object) -> None:
        self.frozen.append(gc.get_freeze_count())
        return None


async def test_a_backtest_replays_with_its_setup_frozen_and_unfreezes_it_at_the_end(
        tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    watcher = FreezeWatcher()
    await run_backtest(load_settings(_env_file=None), {"BTCUSDT": load_bundled()["BTCUSDT"][:60]},
                       tmp_path, progress=False, strategy=watcher)
    assert watcher.frozen and min(watcher.frozen) > 1000   # the setup: modules, engine, ...
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_by_the_caller_is_left_to_the_caller() -> None:
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_setup():
            assert gc.get_freeze_count() == before
        assert gc.get_freeze_count() == before      # still frozen: the caller unfreezes
    finally:
        gc.unfreeze()


def test_an_error_in_the_block_unfreezes_too() -> None:
    try:
        with frozen_setup():
            assert gc.get_freeze_count() > 0
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_freeze_count() == 0
