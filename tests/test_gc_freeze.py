"""A backtest keeps its setup's objects out of the garbage collector's full passes while it
replays (trader/gc_freeze.py), and gives them back when it ends: a process that runs many
backtests (a sweep's worker) keeps none of them frozen, and a caller's own freeze stays."""

import gc
from pathlib import Path

import pytest

from trader.backtest import run_backtest
from trader.config import load_settings
from trader.gc_freeze import YOUNG_THRESHOLD, frozen_setup, young_collections_every
from trader.market.replay import load_bundled


@pytest.fixture(autouse=True)
def nothing_frozen_before() -> None:
    """Each test starts in a process with nothing frozen. A backtest another test of the same
    worker left unfinished (a coroutine dropped mid-replay is closed whenever the collector
    gets to it) can leave its freeze behind: seen once in a 40-file single-process run, where
    the first assertion below read a frozen count from before this test."""
    gc.unfreeze()


class FreezeWatcher:
    """A strategy that never signals and notes how many objects are frozen at each candle."""
    name, warmup = "freeze-watcher", 10

    def __init__(self) -> None:
        self.frozen: list[int] = []

        self.thresholds: list[tuple[int, ...]] = []

    def signal(self, closed: object) -> None:
        self.frozen.append(gc.get_freeze_count())
        self.thresholds.append(gc.get_threshold())
        return None


async def test_a_backtest_replays_with_its_setup_frozen_and_unfreezes_it_at_the_end(
        tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    watcher = FreezeWatcher()
    await run_backtest(load_settings(_env_file=None), {"BTCUSDT": load_bundled()["BTCUSDT"][:60]},
                       tmp_path, progress=False, strategy=watcher)
    assert watcher.frozen and min(watcher.frozen) > 1000   # the setup: modules, engine, ...
    assert gc.get_freeze_count() == 0


async def test_a_backtest_collects_the_young_generation_less_often_and_sets_it_back(
        tmp_path: Path) -> None:
    before = gc.get_threshold()
    watcher = FreezeWatcher()
    await run_backtest(load_settings(_env_file=None), {"BTCUSDT": load_bundled()["BTCUSDT"][:60]},
                       tmp_path, progress=False, strategy=watcher)
    assert set(watcher.thresholds) == {(YOUNG_THRESHOLD, *before[1:])}
    assert gc.get_threshold() == before


def test_the_young_threshold_is_set_back_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(KeyError), young_collections_every(12_345):
        assert gc.get_threshold()[0] == 12_345
        raise KeyError("x")
    assert gc.get_threshold() == before


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
