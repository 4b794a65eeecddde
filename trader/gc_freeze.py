"""Setup objects kept out of the garbage collector's full passes while a long loop runs.

A replay allocates and drops objects at every candle; each full collection (generation 2)
then walks every object alive, the ~100k the imports and the setup left (modules, classes,
settings, the engine) included, though none of them can become garbage while the loop
runs. `gc.freeze()` moves them to the permanent generation, which no collection walks (a
20k-candle backtest: its full collection 76 ms -> 18 ms). Nothing is collected first (a
`gc.collect()` costs 50-100 ms, more than a short run gains): what the setup left as
garbage waits until the loop ends, when everything is unfrozen again, so a process that
runs many backtests (a sweep's worker) does not keep each one's objects forever.

    with frozen_setup(), young_collections_every(YOUNG_THRESHOLD):
        for batch in feed: ...

The young generation is collected after 700 new container objects by default; a replayed
candle makes a few hundred that die young (refcounting frees them, not the collector), so
every few candles a collection walked what happened to be alive. Every 10,000 instead:
~14x fewer collections (a 20k-candle backtest with trades: -0.3 % instructions per
candle), and at most 10,000 young objects waiting for a cycle to be found.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000


@contextmanager
def young_collections_every(allocations: int) -> Iterator[None]:
    """The collector's first threshold set to `allocations` for the block (the others
    kept), then set back to what it was."""
    thresholds = gc.get_threshold()
    gc.set_threshold(allocations, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@contextmanager
def frozen_setup() -> Iterator[None]:
    """Freeze every object alive now for the block; unfreeze after it. When something is
    frozen already (the caller froze its own setup), leave both to the caller: unfreezing
    would unfreeze its objects too."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
