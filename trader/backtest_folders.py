"""The folder a backtest or a sweep writes its run into: `out/<run-id>` (or the start time),
held (flock) against a second run of the same id while this one writes, an earlier run of
that id replaced (only when every file in it is one a run writes) once the new run has
succeeded (an interrupted sweep's results so far go beside it, `keep_unfinished`): until then the new one writes into a staging folder beside it (`out/.<id>.partial`),
so a run that fails leaves nothing in out/<run-id> (a new folder is removed again).

    folder = new_run_dir(Path("out"), "nightly")    # BacktestError on a bad id or folder
    ... write into folder.path ...
    folder.keep()        # the run succeeded: out/nightly is it now (the earlier run gone)
    folder.discard()     # it failed: out/nightly is as it was (no-op after keep)
"""

import fcntl
import os
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trader.backtest_input import BacktestError

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What a backtest (trader/report.py) or a sweep (trader/sweep_report.py) writes in its folder
RUN_OUTPUT = re.compile(r"databases|equity\.png|equity\.csv|trades\.csv|report\.json|"
                        r"report\.txt|results\.csv|equity-\d+-trial-\d+\.png")


@dataclass
class RunFolder:
    """Where a run writes (`path`: a staging folder beside `final`, `out/.<run-id>.partial`)
    and the folder its files end up in (`final`), swapped in by `keep`. `created`: `final`
    was made for this run, so a failed run removes it again."""
    final: Path
    path: Path
    kept: bool = False
    created: bool = False

    @property
    def staged(self) -> bool:
        return self.path != self.final

    def keep(self) -> Path:
        """The run succeeded: its files become `final` (an earlier run's are removed, said on
        stderr); returns `final`. The folder itself stays (the flock held on it too)."""
        if self.staged and not self.kept:
            _swap_in(self.path, self.final)
        self.kept = True
        return self.final

    def keep_unfinished(self) -> Path:
        """An interrupted run's results so far: `final` when it holds no earlier run (as
        `keep`), else a folder beside it, `<final>-interrupted` (an earlier interrupted
        run's there replaced): an unfinished run never replaces a finished one. Returns
        where they are. BacktestError when that folder holds files no run writes or
        another run is writing it (then nothing is kept: `discard`)."""
        if not self.staged or self.kept or not any(self.final.iterdir()):
            return self.keep()
        beside = self.final.with_name(f"{self.final.name}-interrupted")
        if beside.exists():
            _hold_run_folder(beside, beside.name)
            _check_earlier_run(beside)
            _swap_in(self.path, beside, quiet=True)
        else:
            self.path.rename(beside)
        self.kept = True
        return beside

    def discard(self) -> None:
        """The run failed: its staged files go, `final` stays as it was (removed when this
        run made it and it is still empty: a failed run leaves nothing behind)."""
        if self.kept:
            return
        if self.staged and self.path.exists():
            shutil.rmtree(self.path)
        if self.created and self.final.is_dir() and not any(self.final.iterdir()):
            _release_run_folder(self.final)
            self.final.rmdir()


def new_run_dir(out: Path, run_id: str | None = None) -> RunFolder:
    """`out/<run-id>`: `run_id` (an earlier run of that id is replaced once this one has
    succeeded: `RunFolder.keep`; BacktestError when the folder holds other files), or the
    start time (UTC) with -2, -3... when taken."""
    if run_id is not None:
        if not RUN_ID.fullmatch(run_id):
            raise BacktestError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-', "
                                "starting with a letter or digit")
        folder = Path(out) / run_id
        created = not folder.is_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise BacktestError(f"--out {out}: {folder} cannot be a folder ({exc.strerror})") \
                from None
        except OSError as exc:      # no such parent the system lets us make, no permission
            raise BacktestError(f"--out {out}: cannot create {folder} ({exc.strerror})") \
                from None
        _hold_run_folder(folder, run_id)
        staging = _staging(folder)
        if staging.exists():        # left by a run killed before its end: ours, unfinished
            shutil.rmtree(staging)
        _check_earlier_run(folder)
        staging.mkdir()
        return RunFolder(folder, staging, created=created)
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
        staging = _staging(folder)
        if staging.exists():        # left by a run killed before its end, same second
            shutil.rmtree(staging)
        staging.mkdir()
        return RunFolder(folder, staging, created=True)
    raise BacktestError(f"{out}: too many runs started at {stamp}")


def _staging(folder: Path) -> Path:
    """A name no --run-id can take (it cannot start with a dot)."""
    return folder.parent / f".{folder.name}.partial"


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


def _release_run_folder(folder: Path) -> None:
    """Unlock `folder` (a failed run's, about to be removed): a later run of its id in this
    process locks the folder it makes anew."""
    fd = _held_run_folders.pop(folder.resolve(), None)
    if fd is not None:
        os.close(fd)


def _check_earlier_run(folder: Path) -> None:
    """BacktestError, before the run, when `folder` holds a file no run writes (a folder of
    the user's that --run-id happened to name): it is never touched."""
    foreign = [entry.name for entry in sorted(folder.iterdir())
               if not RUN_OUTPUT.fullmatch(entry.name)]
    if foreign:
        raise BacktestError(f"{folder} holds files that are not a tradebot run's "
                            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): "
                            "pick another --run-id")


def _swap_in(staging: Path, folder: Path, *, quiet: bool = False) -> None:
    """The earlier run's files out of `folder` (into a trash folder beside it, then removed),
    the staged run's in: renames within one file system. `quiet`: no line saying so."""
    trash = folder.parent / f".{folder.name}.replaced"
    if trash.exists():
        shutil.rmtree(trash)
    trash.mkdir()
    earlier = list(folder.iterdir())
    for entry in earlier:
        entry.rename(trash / entry.name)
    for entry in staging.iterdir():
        entry.rename(folder / entry.name)
    staging.rmdir()
    shutil.rmtree(trash)
    if earlier and not quiet:    # a new folder (or an empty one) replaced nothing
        print(f"replaced the earlier run {folder.name} ({folder})", file=sys.stderr)
