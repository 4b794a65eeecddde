"""How far a sweep is, on stderr: a tqdm bar with ETA on a terminal (redrawn every second
by `BarClock`), and plain lines every 10 % when stderr is a pipe or a file (`tradebot sweep
... 2>sweep.log`, `| cat`), where a redrawn bar would be kept as hundreds of carriage-return
pieces.

    with sweep_progress(total=24, running=2) as progress:
        for result in results:
            progress.finished(board.progress_text())   # "best sharpe 1.20 (trial 3)"
"""

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from tqdm import tqdm

from trader.display import plural

PLAIN_EVERY = 10      # percent between two plain lines


class Progress(Protocol):
    def finished(self, text: str) -> None:
        """One more trial finished; `text` says the best so far (may be empty)."""


class BarClock:
    """Redraws a progress bar every second while inside, so its elapsed time moves during
    trials that take minutes (tqdm redraws only when a trial finishes)."""

    def __init__(self, bar: tqdm, seconds: float = 1.0) -> None:
        self._bar, self._seconds = bar, seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._redraw, daemon=True, name="sweep-bar-clock")

    def _redraw(self) -> None:
        while not self._stopped.wait(self._seconds):
            self._bar.refresh()   # tqdm takes its own lock: safe against the main thread

    def __enter__(self) -> "BarClock":
        if not self._bar.disable:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()


class BarProgress:
    """The terminal's bar: finished/total, elapsed<left, the best so far."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def finished(self, text: str) -> None:
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.update(1)


class PlainProgress:
    """One line when a trial crosses the next `every` percent, and one for the last:
    "sweep: 6/24 trials (25%), 01:20 elapsed, about 04:00 left, best sharpe 1.20 (trial 3)"."""

    def __init__(self, total: int, stream: TextIO, every: int = PLAIN_EVERY,
                 clock: Callable[[], float] = time.monotonic, running: int = 1) -> None:
        self.total, self.stream, self.every, self.clock = total, stream, every, clock
        self.running = max(1, min(running, total))
        self.done, self.next_percent, self.started = 0, every, clock()

    def start(self) -> None:
        self._say(f"sweep: {plural(self.total, 'trial')}, {self.running} at once; a line every "
                  f"{self.every}%")

    def time_left(self, elapsed: float) -> float:
        """Seconds left. Until the first `running` trials are done, they all started at
        once and each took about `elapsed`: those still running end soon, the queued ones
        run `running` at a time. Then the rate so far (trials done per second) holds, which
        counts the trials run at once by itself."""
        if self.done >= self.running:
            return elapsed / self.done * (self.total - self.done)
        queued = self.total - self.running
        return -(-queued // self.running) * elapsed

    def finished(self, text: str) -> None:
        self.done += 1
        percent = 100 * self.done // max(self.total, 1)
        if percent < self.next_percent and self.done < self.total:
            return
        self.next_percent = (percent // self.every + 1) * self.every
        elapsed = self.clock() - self.started
        left = self.time_left(elapsed)
        best = f", {text}" if text else ""
        self._say(f"sweep: {self.done}/{self.total} trials ({percent}%), "
                  f"{tqdm.format_interval(elapsed)} elapsed, about "
                  f"{tqdm.format_interval(left)} left{best}")

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class NoProgress:
    def finished(self, text: str) -> None:
        pass


@contextmanager
def sweep_progress(total: int, running: int, *, shown: bool = True,
                   stream: TextIO | None = None) -> Iterator[Progress]:
    """The right display for `stream` (stderr by default): see the module docstring."""
    stream = stream or sys.stderr
    if not shown:
        yield NoProgress()
    elif not stream.isatty():
        plain = PlainProgress(total, stream, running=running)
        plain.start()
        yield plain
    else:
        with tqdm(total=total, unit="trial", desc="sweep", file=stream,
                  dynamic_ncols=True) as bar, BarClock(bar):
            bar.set_postfix_str(f"running {running} at once")
            yield BarProgress(bar)
