"""Setup objects kept out of the garbage collector's full passes while a long loop runs.

A replay allocates and drops objects at every candle; each full collection (generation 2)
then walks every object alive, the ~100k the imports and the setup left (modules, classes,
settings, the engine) included, though none of them can become garbage while the loop
runs. `gc.freeze()` moves them to the permanent generation, which no collection walks (a
20k-candle backtest: its full collection 76 ms -> 18 ms). Nothing is collected first (a
`gc.collect()` costs 50-100 ms, more than a short run gains): what the setup left as
garbage waits until the loop ends, when everything is unfrozen again, so a process that
runs many backtests (a sweep's worker) does not keep each one's objects forever.

    with frozen_setup():
        for batch in feed: ...
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
