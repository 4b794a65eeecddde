"""Run the agent's event loop to the process's exit, bounded: `asyncio.run` waits with no
limit (Python 3.11) for the loop's worker threads, and a DNS lookup that hangs holds one of
them (aiohttp and httpx resolve names in the loop's default executor: getaddrinfo blocks
until the resolver gives up, ~10 s per unreachable nameserver). The agent had flushed its
alerts and closed its database 12 s after SIGTERM, then waited 22 s more on that thread: a
host that kills at 30 s would have killed it (found by a reviewer).

    code = run_to_exit(run_agent(settings))    # as asyncio.run, bounded after the coroutine
"""

import asyncio
import os
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

WORKER_PREFIX = "tradebot-worker"
THREADS_WAIT_SECONDS = 2.0     # after the coroutine ended: for worker threads to finish


def run_to_exit(main: Coroutine[Any, Any, int],
                threads_wait: float = THREADS_WAIT_SECONDS) -> int:
    """`asyncio.run(main)` (an asyncio.Runner: the same signal handling), except that the
    loop's worker threads get `threads_wait` seconds once `main` has returned; threads still
    busy then are left behind, said in one WARNING line, and the process exits at once with
    `main`'s code (`os._exit`: the interpreter's own exit would join them, without limit).
    An exception from `main` goes on up as from asyncio.run, and that exit is not bounded
    (the interpreter joins the threads): a caller turns the exceptions it expects into a
    code inside `main` (trader/cli.py `_agent_code`: start-up refusals)."""
    runner = asyncio.Runner()
    executor = ThreadPoolExecutor(thread_name_prefix=WORKER_PREFIX)
    runner.get_loop().set_default_executor(executor)
    code: int | None = None     # None: an exception from `main` is on its way up
    try:
        code = runner.run(main)
        return code
    finally:
        _leave_or_close(runner, executor, threads_wait, code)


def _leave_or_close(runner: asyncio.Runner, executor: ThreadPoolExecutor, wait: float,
                    code: int | None) -> None:
    executor.shutdown(wait=False, cancel_futures=True)
    busy = _busy_after(wait)
    if not busy:
        runner.close()             # the executor is done: closing does not wait
        return
    logger.warning("worker threads still busy {:.0f} s after the agent stopped (a DNS lookup "
                   "that does not answer?): exiting without them threads={}", wait,
                   ",".join(thread.name for thread in busy))
    if code is None:
        return                     # an exception is on its way up: it is reported first
    logger.complete()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _busy_after(wait: float) -> list[threading.Thread]:
    """The loop's worker threads still alive after at most `wait` seconds."""
    deadline = time.monotonic() + wait
    workers = [t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)]
    for thread in workers:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in workers if thread.is_alive()]
