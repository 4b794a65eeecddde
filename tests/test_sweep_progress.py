"""The sweep's progress: on a terminal a bar that shows signs of life while trials that take
minutes run; into a pipe or a log file (not a terminal) plain lines every 10 %, not a bar
redrawn with carriage returns (which a file keeps, piece by piece)."""

import io
import time

from tqdm import tqdm

from trader.sweep_progress import BarClock, PlainProgress, sweep_progress


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


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_into_a_pipe_or_a_file_it_prints_a_plain_line_every_ten_percent() -> None:
    stream = io.StringIO()                  # isatty() is False, as for `| cat` or 2>log
    with sweep_progress(24, 2, stream=stream) as progress:
        for number in range(24):
            progress.finished(f"best sharpe 1.{number:02d} (trial {number + 1})")
    text = stream.getvalue()
    assert "\r" not in text, text
    lines = text.splitlines()
    assert lines[0] == "sweep: 24 trials, 2 at once; a line every 10%"
    counts = [line.split()[1] for line in lines[1:]]
    # 3/24 is 12 %, 5/24 20 %, ... each line the first trial at or past the next 10 %
    assert counts == ["3/24", "5/24", "8/24", "10/24", "12/24", "15/24", "17/24", "20/24",
                      "22/24", "24/24"], lines
    assert lines[-1].startswith("sweep: 24/24 trials (100%), 00:00 elapsed, about 00:00 "
                                "left, best sharpe 1.23 (trial 24)"), lines[-1]


def test_a_plain_line_says_the_time_left() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = PlainProgress(4, stream, clock=lambda: now[0])
    now[0] = 90.0
    progress.finished("")
    assert stream.getvalue() == "sweep: 1/4 trials (25%), 01:30 elapsed, about 04:30 left\n"


def test_on_a_terminal_it_draws_the_bar() -> None:
    screen = Terminal()
    with sweep_progress(2, 1, stream=screen) as progress:
        progress.finished("best sharpe 1.00 (trial 1)")
    assert "sweep:  50%" in screen.getvalue() and "\r" in screen.getvalue(), screen.getvalue()


def test_the_first_time_left_counts_the_trials_run_at_once() -> None:
    """4 trials of ~15 s, 2 at once: when the first ends, its partner ends with it and the
    last two take one more round, ~15 s (review4: "about 00:47 left", as for one at a time)."""
    now = [0.0]
    stream = io.StringIO()
    progress = PlainProgress(4, stream, every=1, clock=lambda: now[0], running=2)
    now[0] = 15.0
    progress.finished("")
    now[0] = 16.0
    progress.finished("")
    assert stream.getvalue().splitlines() == [
        "sweep: 1/4 trials (25%), 00:15 elapsed, about 00:15 left",
        "sweep: 2/4 trials (50%), 00:16 elapsed, about 00:16 left"]
