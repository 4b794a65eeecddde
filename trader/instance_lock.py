"""One agent per database: `tradebot run` holds an exclusive lock on `<database>.lock` for
its whole life, so a second agent on the same database (or a second replay, which would
otherwise delete the running one's file) refuses to start instead of trading beside it.

    with agent_lock(settings.db_path):      # ConfigError if another agent holds it
        ...                                 # the agent's whole life

The lock is the kernel's (`flock`), not a row in the database: it is released the moment
the process dies, however it dies (SIGKILL included), so a restart after a crash is never
refused, and nothing stale is left on the disk to clean up. The file holds the holder's
pid, read only to name it in the refusal.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loguru import logger

from storage import StorageError
from trader.config import ConfigError


def lock_path(db_path: Path) -> Path:
    return Path(f"{db_path}.lock")


@contextmanager
def agent_lock(db_path: Path, variable: str = "TRADEBOT_DB") -> Iterator[None]:
    """Hold `<db_path>.lock` exclusively while the block runs.

    Raises ConfigError (one line naming `variable`, the database and the other agent's pid)
    when another process holds it; StorageError when the lock file cannot be created (e.g.
    a read-only folder): both end `tradebot run` with one line and exit 2."""
    path = lock_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"{path}: cannot create the agent's lock file ({exc}); "
                           "TRADEBOT_DB must be in a writable folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError([
                f"{variable}: another tradebot agent (pid {holder}) is running on {db_path}; "
                "stop it first (`tradebot shutdown`, or SIGTERM) or point this one at another "
                "database"]) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        logger.debug("agent lock held path={} pid={}", path, os.getpid())
        yield
    finally:
        os.close(fd)      # closing releases the flock
