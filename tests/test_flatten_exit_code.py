"""A flatten that leaves a position open is not a success: `tradebot shutdown --flatten`
exits 1 (a script's `tradebot shutdown --flatten && echo flat` must not believe the account
is flat), Telegram's /close and /shutdown answer "failed", and each says what is open, what
protects it and what to do, in the words of the one who asked (no Telegram may be
configured for a CLI user). The agent still goes to sleep, and says so.

The give-up alert names what is true: a position whose stop-loss is on the exchange is
still protected (PROTECTION, WARN: the close was given up), one without a stop is not
(POSITION_UNPROTECTED, CRITICAL).

Market closes are refused by the fake Binance: HTTP 400, -2022 "ReduceOnly Order is
rejected." to POST /fapi/v1/order (`inject_fault`; https://developers.binance.com/docs/
derivatives/usds-margined-futures/error-code), a definite refusal that waiting does not
cure, so each attempt sends a new close and three give it up (a refusal for now, -4131 or
a 503 "Service Unavailable.", is sent again on a backoff instead:
tests/test_close_refused_for_now.py); the stop-loss goes through the Algo
Order endpoint and stays. (A 503 leaves the close's outcome unknown: it is probed, never
sent again blind, and the answer says the agent finishes it: the last test here and
tests/test_close_in_flight.py.)
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.format import format_result
from tests.engine_world import SYMBOL, settings_for
from tests.fakes.binance_harness import booted_engine
from tests.fakes.binance_harness import settings_for as binance_settings_for
from tests.fakes.binance_server import FakeBinance
from tests.positions import make
from tests.test_operator_intent_cli import stored
from trader.alerts import Alert, AlertName, Severity
from trader.commands import ALL_SYMBOLS, Command, CommandKind
from trader.control import Controller
from trader.control_cli import run_control_cli
from trader.domain import CloseReason, Side
from trader.events import FlattenResult, Policy
from trader.intent_keeper import RECORD_KEY
from trader.lifecycle import step
from trader.position import PositionState
from trader.trade_store import TradeStore

BOUND = 60.0
MANY = 1000          # every market close of the run fails
REFUSED = {"code": -2022, "http_status": 400, "msg": "ReduceOnly Order is rejected."}
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
async def binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
        yield fake


def cli_settings(fake: FakeBinance, db_path: Path):  # type: ignore[no-untyped-def]
    return settings_for(db_path, TRADEBOT_EXCHANGE="binance", BINANCE_API_KEY=fake.api_key,
                        BINANCE_API_SECRET=fake.api_secret, BINANCE_FUTURES_URL=fake.url,
                        BINANCE_FUTURES_WS_URL=fake.ws_url)


def alerts_in(db_path: Path) -> list[tuple[str, str, str]]:
    store = TradeStore.open(db_path)
    try:
        return [(a.name, a.severity, a.text) for a in store.recent_alerts(200)]
    finally:
        store.close()


def still_open_line(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(f"{SYMBOL}: still open")]
    return line


# --- `tradebot shutdown --flatten` from a shell (no agent running, no Telegram) -----------

async def test_a_flatten_that_leaves_a_position_open_exits_1_and_says_what_to_do(
        tmp_path, capsys, binance):
    binance.inject_fault("POST /fapi/v1/order", times=MANY, **REFUSED)
    db_path = tmp_path / "t.db"
    code = await asyncio.wait_for(run_control_cli(cli_settings(binance, db_path), "shutdown",
                                                  flatten=True), BOUND)
    output = capsys.readouterr().out
    assert code == 1, output
    line = still_open_line(output)
    assert line.startswith(f"{SYMBOL}: still open (0.1) after 3 market closes, protected by "
                           "its stop-loss at "), line
    assert "run `tradebot shutdown --flatten` again or close it in the Binance app" in line
    assert "/status" not in line and "/close" not in line      # no Telegram here
    assert "STILL OPEN - check /status" not in output
    assert "asleep" in output and "1 position stays protected" in output, output
    assert '"asleep": true' in (stored(db_path, RECORD_KEY) or "")   # asleep all the same
    assert binance.sim.position(SYMBOL).quantity == Decimal("0.1")

    given_up = [a for a in alerts_in(db_path) if a[2].startswith(f"{SYMBOL}: still open")]
    assert [(name, severity) for name, severity, _ in given_up] == [("PROTECTION", "WARN")]
    assert "stop-loss" in given_up[0][2] and "NO stop-loss" not in given_up[0][2]
    assert not [a for a in alerts_in(db_path) if a[0] == "POSITION_UNPROTECTED"]


async def test_a_flatten_that_closes_everything_exits_0(tmp_path, capsys, binance):
    code = await asyncio.wait_for(run_control_cli(cli_settings(binance, tmp_path / "t.db"),
                                                  "shutdown", flatten=True), BOUND)
    output = capsys.readouterr().out
    assert code == 0, output
    assert f"{SYMBOL}: closed at" in output and "no open positions" in output
    assert binance.sim.position(SYMBOL).quantity == 0


# --- Telegram's /close all and /shutdown (flatten) on the same path ---------------------

@asynccontextmanager
async def agent(fake: FakeBinance, tmp_path: Path) -> AsyncIterator[Controller]:
    """An agent booted on the account (the position adopted and protected)."""
    async with booted_engine(binance_settings_for(fake, db_path=tmp_path / "t.db")) as engine:
        yield Controller(engine)


def telegram_command(kind: CommandKind, **fields) -> Command:  # type: ignore[no-untyped-def]
    return Command(kind, f"tg:1:{kind.value}", datetime.now(UTC), source="telegram", **fields)


async def test_close_all_that_leaves_a_position_open_answers_failed(tmp_path, binance):
    async with agent(binance, tmp_path) as controller:
        binance.inject_fault("POST /fapi/v1/order", times=MANY, **REFUSED)
        result = await controller.run(telegram_command(CommandKind.CLOSE, symbol=ALL_SYMBOLS))
        assert not result.ok, result.lines
        line = still_open_line("\n".join(result.lines))
        assert "protected by its stop-loss at" in line
        assert f"send /close {SYMBOL} again or close it in the Binance app" in line
        assert format_result(CommandKind.CLOSE, result).startswith("⚠️ <b>Close: failed</b>")
        assert SYMBOL in controller.engine.positions


async def test_close_all_that_closes_everything_still_answers_done(tmp_path, binance):
    async with agent(binance, tmp_path) as controller:
        result = await controller.run(telegram_command(CommandKind.CLOSE, symbol=ALL_SYMBOLS))
        assert result.ok, result.lines
        assert any(line.startswith(f"{SYMBOL}: closed at") for line in result.lines)


async def test_shutdown_flatten_from_telegram_that_leaves_a_position_open_answers_failed_asleep(
        tmp_path, binance):
    async with agent(binance, tmp_path) as controller:
        binance.inject_fault("POST /fapi/v1/order", times=MANY, **REFUSED)
        result = await controller.run(telegram_command(CommandKind.SHUTDOWN, flatten=True))
        assert not result.ok, result.lines
        assert f"send /close {SYMBOL} again" in still_open_line("\n".join(result.lines))
        assert result.lines[-1].startswith("asleep"), result.lines
        assert controller.engine.guard_state.asleep


# --- the give-up alert, in the pure core -------------------------------------------------

def give_up(stop_live: bool) -> Alert:
    position = make(state=PositionState.CLOSING, live_legs=stop_live, close_attempts=3,
                    closing_reason=CloseReason.COMMAND)
    result = step(position, FlattenResult(Decimal("0.1")), NOW, Policy())
    assert result.position.state.open and result.position.state is not PositionState.CLOSING
    [alert] = [a for a in result.actions if isinstance(a, Alert)]
    return alert


def test_a_close_given_up_with_the_stop_on_the_exchange_is_no_unprotected_alarm() -> None:
    alert = give_up(stop_live=True)
    assert alert.name is AlertName.PROTECTION and alert.level is Severity.WARN
    assert alert.text.startswith(f"{SYMBOL}: still open (0.1) after 3 market closes")
    assert "stop-loss at 49,500 stays on the exchange" in alert.text


def test_a_close_given_up_without_a_stop_is_position_unprotected() -> None:
    alert = give_up(stop_live=False)
    assert alert.name is AlertName.POSITION_UNPROTECTED and alert.level is Severity.CRITICAL
    assert "NO stop-loss" in alert.text


def test_the_asleep_line_claims_protection_only_where_a_stop_loss_covers() -> None:
    from trader.control_sleep import _asleep_line
    covered = make(state=PositionState.PROTECTED)
    naked = make(symbol="ETHUSDT", state=PositionState.ATTACHING, live_legs=False)
    assert _asleep_line([covered]) == ("asleep: no new entries; 1 position stays protected by "
                                       "exchange-side orders")
    assert _asleep_line([covered, naked]) == ("asleep: no new entries; 2 positions stay open, "
                                              "ETHUSDT with NO stop-loss on the exchange right now")
    assert _asleep_line([]) == "asleep: no new entries; no open positions"


async def test_a_close_whose_answer_was_lost_answers_waiting_and_is_not_sent_again(
        tmp_path, binance):
    """A 503 to the close: its outcome is unknown, so the answer says the agent goes on by
    itself ("waiting", not "failed ... send /close again", which would ask the operator for
    the blind re-send the agent refuses to make), and one close only was sent."""
    async with agent(binance, tmp_path) as controller:
        binance.inject_fault("POST /fapi/v1/order", http_status=503, times=MANY)
        before = len(binance.requests("POST /fapi/v1/order"))
        result = await controller.run(telegram_command(CommandKind.CLOSE, symbol=SYMBOL))
        assert not result.ok and result.waiting, result.lines
        line = still_open_line("\n".join(result.lines))
        assert "its answer was lost" in line and "send /close" not in line, line
        assert format_result(CommandKind.CLOSE, result).startswith("⏳ <b>Close: waiting</b>")
        assert len(binance.requests("POST /fapi/v1/order")) == before + 1
