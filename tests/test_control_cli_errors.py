"""`tradebot shutdown|wake` acting here (no agent running) when the exchange fails: exit 1,
one line on stderr saying what failed, at which step, what was and was not done and what to
do; no traceback (it is logged at DEBUG only) and no "Unclosed client session" (the
python-binance session is closed whatever happens). A shutdown puts the agent to sleep all
the same (saved without the exchange, as /shutdown sleeps whatever fails); a wake does not
wake it."""

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_world import SYMBOL
from tests.fakes.binance_server import FakeBinance
from tests.test_app import clean_env
from trader.intent_keeper import RECORD_KEY

BOUND = 60.0
NOBODY = {"TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": "k" * 16,
          "BINANCE_API_SECRET": "s" * 16, "BINANCE_FUTURES_URL": "http://127.0.0.1:9"}
MANY = 1000          # a fault that stays for every retry of the run


async def control(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """`python -m trader ARGS` as the operator runs it: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trader", *args, cwd=tmp_path,
        env=clean_env(tmp_path, TRADEBOT_SYMBOLS=SYMBOL, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), BOUND)
    return process.returncode or 0, out.decode(), err.decode()


def the_failure_line(action: str, code: int, stderr: str, *words: str) -> str:
    """The one line naming the problem; asserts exit 1 and no traceback, no unclosed session."""
    assert code == 1, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith(f"{action}: ")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "Unclosed" not in stderr, stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def intent_saved(db_path: Path) -> bool:
    if not db_path.exists():
        return False
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT 1 FROM kv WHERE key = ?", [RECORD_KEY]).fetchone() is not None


def fake_env(fake: FakeBinance) -> dict[str, str]:
    return {"TRADEBOT_EXCHANGE": "binance", "BINANCE_API_KEY": fake.api_key,
            "BINANCE_API_SECRET": fake.api_secret, "BINANCE_FUTURES_URL": fake.url,
            "BINANCE_FUTURES_WS_URL": fake.ws_url}


@pytest.fixture
async def binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        yield fake


ASLEEP_ANYWAY = "was put to sleep all the same (no new entries when it runs): saved in"


@pytest.mark.parametrize(("args", "state", "saved"), [
    (("shutdown",), ASLEEP_ANYWAY, True),
    (("shutdown", "--flatten"), ASLEEP_ANYWAY, True),
    (("wake",), "was not woken", False)])
async def test_nobody_listening_is_one_line_and_exit_1(tmp_path, args, state, saved):
    code, _, stderr = await control(tmp_path, *args, **NOBODY)
    line = the_failure_line(args[0], code, stderr, "the exchange did not answer",
                            "server time: cannot connect to 127.0.0.1:9", "at start-up",
                            "no order was sent or cancelled", f"{tmp_path / 't.db'} {state}",
                            f"run `tradebot {' '.join(args)}` again")
    assert "ConnectionKey" not in line
    assert intent_saved(tmp_path / "t.db") is saved


async def test_a_shutdown_that_failed_at_start_up_leaves_the_agent_asleep(tmp_path, binance):
    """The exchange is back: the agent started afterwards sleeps (no new entries) and says
    so; a wake is what brings it back."""
    code, _, _ = await control(tmp_path, "shutdown", **NOBODY)
    assert code == 1
    code, out, stderr = await control(tmp_path, "wake", **fake_env(binance))
    assert code == 0, stderr[-3000:]
    assert "before: state: ASLEEP" in out, out


async def test_the_traceback_is_there_at_debug(tmp_path):
    code, _, stderr = await control(tmp_path, "shutdown", LOG_LEVEL="DEBUG", **NOBODY)
    assert code == 1
    assert "Traceback" in stderr and "UnknownOutcome" in stderr
    assert "Unclosed" not in stderr
    assert "k" * 16 not in stderr and "s" * 16 not in stderr


@pytest.mark.parametrize(("endpoint", "fault", "words"), [
    ("GET /fapi/v1/time", {"http_status": 503},
     ["the exchange answered with an error (HTTP 503, code -1000: Unknown error",
      "Check the network and the exchange's status"]),
    ("GET /fapi/v1/time", {"http_status": 418, "code": -1003, "retry_after": 120},
     ["HTTP 418, code -1003: Way too many requests; IP banned.", "wait 120 s"]),
    ("GET /fapi/v1/positionSide/dual", {"code": -1021, "msg": "Timestamp for this request is "
                                                             "outside of the recvWindow."},
     ["HTTP 400, code -1021", "sync it (NTP)"]),
])
async def test_an_exchange_answering_errors_is_one_line_and_exit_1(tmp_path, binance, endpoint,
                                                                     fault, words):
    binance.inject_fault(endpoint, times=MANY, **fault)
    code, _, stderr = await control(tmp_path, "shutdown", **fake_env(binance))
    the_failure_line("shutdown", code, stderr, *words, "at start-up",
                     "no order was sent or cancelled", ASLEEP_ANYWAY)
    assert intent_saved(tmp_path / "t.db")
    assert binance.accepted_orders == []


async def test_a_failure_during_reconciliation_says_so(tmp_path, binance):
    """The exchange starts up, then fails while boot reads the orders: the line says the
    reconciliation stopped part way and the agent was put to sleep all the same."""
    binance.inject_fault("GET /fapi/v1/openOrders", http_status=503, times=MANY)
    code, _, stderr = await control(tmp_path, "shutdown", **fake_env(binance))
    the_failure_line("shutdown", code, stderr, "HTTP 503", "during start-up reconciliation",
                     ASLEEP_ANYWAY, "stopped part way")
    assert intent_saved(tmp_path / "t.db")


async def test_a_rejected_key_stays_a_configuration_error(tmp_path, binance):
    """Binance refusing the key (-2015) is for the operator to fix in the configuration:
    exit 2, as before; the HTTP session is closed all the same."""
    env = {**fake_env(binance), "BINANCE_API_KEY": "not-the-fake-api-key-0000"}
    code, _, stderr = await control(tmp_path, "wake", **env)
    assert code == 2, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("config error: ")]
    assert len(errors) == 1 and "BINANCE_API_KEY" in errors[0], stderr[-3000:]
    assert "Traceback" not in stderr and "Unclosed" not in stderr, stderr[-3000:]
