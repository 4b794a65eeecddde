"""Binance settings that send the REST calls and the streams to different places are said.
Found by a reviewer: `tradebot config` took BINANCE_FUTURES_URL without
BINANCE_FUTURES_WS_URL, or BINANCE_TESTNET=false with a testnet URL, without a word: the
orders then go to one host and the order updates come from another (or never). A private
fake or a proxy is legitimate: a warning naming the variables, never an error."""

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos.agent import REPO, agent_env
from tests.fakes.binance_server import FakeBinance
from tests.test_cli import run_cli
from trader.config import load_settings
from trader.config_hosts import host_warnings

KEYS = {"BINANCE_API_KEY": "k" * 16, "BINANCE_API_SECRET": "s" * 16}


def warned(**env: object) -> list[str]:
    return host_warnings(load_settings(_env_file=None, exchange="binance", **KEYS, **env))


def test_a_rest_url_without_a_stream_url_names_both_and_where_the_streams_go() -> None:
    assert warned(BINANCE_FUTURES_URL="http://user:pw@10.0.0.5:8080") == [
        "BINANCE_FUTURES_URL is set (REST to 10.0.0.5:8080) but BINANCE_FUTURES_WS_URL is "
        "not: the streams go to fstream.binancefuture.com (the BINANCE_TESTNET=true default); "
        "set both to the same place, or neither"]


def test_a_stream_url_without_a_rest_url_is_said_the_other_way() -> None:
    assert warned(BINANCE_TESTNET="false", BINANCE_FUTURES_WS_URL="ws://10.0.0.5:8081/") == [
        "BINANCE_FUTURES_WS_URL is set (streams from 10.0.0.5:8081) but BINANCE_FUTURES_URL "
        "is not: the REST calls go to fapi.binance.com (the BINANCE_TESTNET=false default); "
        "set both to the same place, or neither"]


def test_mainnet_chosen_with_a_testnet_url_is_said() -> None:
    assert warned(BINANCE_TESTNET="false",
                  BINANCE_FUTURES_URL="https://testnet.binancefuture.com",
                  BINANCE_FUTURES_WS_URL="wss://fstream.binancefuture.com/") == [
        "BINANCE_TESTNET=false (MAINNET) but BINANCE_FUTURES_URL is a testnet host "
        "(testnet.binancefuture.com)",
        "BINANCE_TESTNET=false (MAINNET) but BINANCE_FUTURES_WS_URL is a testnet host "
        "(fstream.binancefuture.com)"]


def test_the_testnet_chosen_with_a_mainnet_url_is_said() -> None:
    """The agent would say "live (testnet)" while it trades real money."""
    [line] = warned(BINANCE_FUTURES_URL="https://fapi.binance.com",
                    BINANCE_FUTURES_WS_URL="wss://demo-fstream.binance.com/")
    assert line == ("BINANCE_TESTNET=true (testnet) but BINANCE_FUTURES_URL is a MAINNET host "
                    "(fapi.binance.com): it trades real money while it says testnet")


@pytest.mark.parametrize("env", [
    {},                                                     # Binance's own, BINANCE_TESTNET chooses
    {"BINANCE_TESTNET": "false"},
    {"BINANCE_FUTURES_URL": "http://127.0.0.1:9000",        # a private fake: both set
     "BINANCE_FUTURES_WS_URL": "ws://127.0.0.1:9001/"},
    {"BINANCE_TESTNET": "false", "BINANCE_FUTURES_URL": "https://fapi.binance.com",
     "BINANCE_FUTURES_WS_URL": "wss://fstream.binance.com/"},
    {"BINANCE_FUTURES_URL": "https://testnet.binancefuture.com",
     "BINANCE_FUTURES_WS_URL": "wss://fstream.binancefuture.com/"},
])
def test_consistent_hosts_say_nothing(env: dict[str, str]) -> None:
    assert warned(**env) == []


def test_tradebot_config_prints_the_warning_and_still_succeeds(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "config", TRADEBOT_EXCHANGE="binance", **KEYS,
                     BINANCE_FUTURES_URL="http://127.0.0.1:9000")
    assert result.returncode == 0, result.stderr
    warnings = [line.split("config warning: ", 1)[1] for line in result.stderr.splitlines()
                if "config warning: " in line]
    assert warnings == [
        "BINANCE_FUTURES_URL is set (REST to 127.0.0.1:9000) but BINANCE_FUTURES_WS_URL is "
        "not: the streams go to fstream.binancefuture.com (the BINANCE_TESTNET=true default); "
        "set both to the same place, or neither"]


async def test_tradebot_run_says_it_at_start(tmp_path: Path) -> None:
    """The same line when the agent starts (here on an account it then refuses: hedge mode,
    so it ends before any stream would go to the testnet's host)."""
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000")}) as fake:
        fake.set_hedge_mode(True)
        env = agent_env(fake, tmp_path / "r.db", "BTCUSDT")
        del env["BINANCE_FUTURES_WS_URL"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trader", "run", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    host = fake.url.split("//", 1)[1].rstrip("/")
    assert (f"config warning: BINANCE_FUTURES_URL is set (REST to {host}) but "
            "BINANCE_FUTURES_WS_URL is not") in out.decode()
