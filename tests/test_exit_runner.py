"""`tradebot run` exits once the agent stopped even when a worker thread of its loop hangs
(a DNS lookup that does not answer: aiohttp and httpx resolve names in the loop's default
executor). `asyncio.run` joined that thread with no limit: 34 s after SIGTERM where the host
kills at 30 (found by a reviewer). trader/exit_runner.py bounds the wait."""

import subprocess
import sys
import time

AGENT = """
import asyncio, time
from trader.exit_runner import run_to_exit

async def agent():
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, time.sleep, {work})   # a lookup under way at the stop
    await asyncio.sleep(0.2)
    print("stopped cleanly", flush=True)
    return 0

raise SystemExit(run_to_exit(agent(), threads_wait=1.0))
"""


def run(work: float) -> tuple[int, float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", AGENT.format(work=work)], capture_output=True,
                          text=True, timeout=120, check=False)
    return done.returncode, time.monotonic() - started, done.stdout + done.stderr


def test_a_worker_thread_that_hangs_does_not_hold_the_exit():
    code, seconds, output = run(work=60)
    assert code == 0, output
    assert seconds < 30, (seconds, output)        # was 60 s: the thread's whole sleep
    assert "stopped cleanly" in output
    assert "worker threads still busy" in output and "tradebot-worker" in output, output


def test_a_worker_thread_that_ends_in_time_is_waited_for():
    """The negative: a lookup that ends within the wait is joined as before, silently."""
    code, seconds, output = run(work=0.3)
    assert code == 0, output
    assert "worker threads still busy" not in output, output


REFUSED_AT_BOOT = """
import asyncio, sys, time
import trader.app
from trader.cli import main
from trader.config import ConfigError

async def refused(settings, **options):
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, time.sleep, 60)       # the heartbeat's lookup, hung
    await asyncio.sleep(0.2)
    raise ConfigError(["TELEGRAM_BOT_TOKEN: rejected by Telegram (401 Unauthorized)"])

trader.app.run_agent = refused
sys.exit(main(["run"]))
"""


def test_a_refusal_at_boot_exits_with_its_line_and_code_2_despite_a_hung_lookup(tmp_path):
    """A start-up refusal (a bot token or keys the service rejects) is a ConfigError out of
    the agent: its exit was not bounded (the exception went up past the runner, and the
    interpreter then joined the hung worker thread: 15 s; found by a reviewer)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", REFUSED_AT_BOOT], capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "TRADEBOT_DB": str(tmp_path / "t.db")})
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert "config error: TELEGRAM_BOT_TOKEN: rejected by Telegram" in done.stderr
    assert seconds < 30, (seconds, done.stderr)      # was 60 s: the thread's whole sleep
