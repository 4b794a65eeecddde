"""The folder a backtest or a sweep writes its run into: `out/<run-id>` (or the start time),
held (flock) against a second run of the same id while this one writes, an earlier run of
that id replaced (only when every file in it is one a run writes).

    folder = new_run_dir(Path("out"), "nightly")    # BacktestError on a bad id or folder
"""

import fcntl
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from trader.backtest_input import BacktestError

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What a backtest (trader/report.py) or a sweep (trader/sweep_report.py) writes in its folder
RUN_OUTPUT = re.compile(r"databases|equity\.png|equity\.csv|trades\.csv|report\.json|"
                        r"report\.txt|results\.csv|equity-\d+-trial-\d+\.png")


def new_run_dir(out: Path, run_id: str | None = None) -> Path:
    """`out/<run-id>`, created: `run_id` (an earlier run of that id is replaced, said on
    stderr; BacktestError when the folder holds other files), or the start time (UTC) with
    -2, -3... when taken."""
    if run_id is not None:
        if not RUN_ID.fullmatch(run_id):
            raise BacktestError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-', "
                                "starting with a letter or digit")
        folder = Path(out) / run_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise BacktestError(f"--out {out}: {folder} cannot be a folder ({exc.strerror})") \
                from None
        except OSError as exc:      # no such parent the system lets us make, no permission
            raise BacktestError(f"--out {out}: cannot create {folder} ({exc.strerror})") \
                from None
        _hold_run_folder(folder, run_id)
        if any(folder.iterdir()):
            clear_earlier_run(folder, run_id)
        return folder
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        folder = Path(out) / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            if not Path(out).is_dir():
                raise BacktestError(f"--out {out}: not a folder") from None
            continue
        except NotADirectoryError:
            raise BacktestError(f"--out {out}: not a folder") from None
        except OSError as exc:
            raise BacktestError(f"--out {out}: cannot create {folder} ({exc.strerror})") \
                from None
        return folder
    raise BacktestError(f"{out}: too many runs started at {stamp}")


_held_run_folders: dict[Path, int] = {}     # folder -> the open descriptor holding its flock


def _hold_run_folder(folder: Path, run_id: str) -> None:
    """Lock `folder` (the kernel's flock on the directory) for the rest of this process:
    a second backtest or sweep with the same --out and --run-id is refused instead of
    deleting the files of the one still running. Released when the process ends, however."""
    key = folder.resolve()
    if key in _held_run_folders:
        return
    fd = os.open(key, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BacktestError(f"--run-id {run_id}: another backtest or sweep is writing "
                            f"{folder} right now; wait for it or pick another --run-id") from None
    _held_run_folders[key] = fd


def clear_earlier_run(folder: Path, run_id: str) -> None:
    """Remove an earlier backtest's or sweep's files from `folder` (its stale databases of
    other symbols included), saying so; BacktestError, and nothing removed, when it holds a
    file no run writes (a folder of the user's that --run-id happened to name)."""
    entries = sorted(folder.iterdir())
    foreign = [entry.name for entry in entries if not RUN_OUTPUT.fullmatch(entry.name)]
    if foreign:
        raise BacktestError(f"{folder} holds files that are not a tradebot run's "
                            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): "
                            "pick another --run-id")
    print(f"replacing the earlier run {run_id} ({folder})", file=sys.stderr)
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
