"""The sweep's progress bar shows signs of life while trials that take minutes run."""

import io
import time

from tqdm import tqdm

from trader.sweep import BarClock


def test_the_bar_clock_redraws_the_elapsed_time_between_finished_trials() -> None:
    screen = io.StringIO()
    with tqdm(total=4, unit="trial", file=screen, mininterval=0) as bar, \
            BarClock(bar, seconds=0.05):
        deadline = time.monotonic() + 10
        while screen.getvalue().count("0/4") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert screen.getvalue().count("0/4") >= 3, "redrawn with no trial finished"


def test_a_disabled_bar_gets_no_clock_thread() -> None:
    with tqdm(total=4, disable=True) as bar, BarClock(bar) as clock:
        assert not clock._thread.is_alive()
