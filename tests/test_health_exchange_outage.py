"""Binance's REST API not answering is part of health (review rv15, s12): every route
answering HTTP 503 with a position open is a warning after the short bound
(max(3 ticks, 30 s)), unhealthy after the long one (max(12 ticks, 2 min): GET /health
answers 503), /status says so with the last error, and one EXCHANGE_UNREACHABLE alert
goes out when it starts and one EXCHANGE_REACHABLE when it ends, saying how long it lasted.

Through the real engine and python-binance against the fake Binance server. The 503 is
Binance's "Unknown error, please check your request or try again later." (USD-M General
Info, "HTTP 503 Status: Message Variants & Handling",
https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
Time is moved by a clock the test shifts, not waited out."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.format import format_status
from bot.health_reply import health_text
from tests.fakes.binance_harness import settings_for
from tests.fakes.binance_server import FakeBinance
from trader.alerter import Alerter
from trader.commands import StatusView
from trader.domain import Side
from trader.engine import Engine
from trader.exchange.binance import BinanceExchange
from trader.exchange.gate import RetryPolicy
from trader.health import HealthMonitor
from trader.presence import AgentPresence
from trader.startup import boot
from trader.trade_store import TradeStore
from trader.views import status_view

SYMBOL = "BTCUSDT"
FAST = RetryPolicy(attempts=2, initial=0.01, cap=0.02)
ROUTES = ["/fapi/v3/positionRisk", "/fapi/v2/positionRisk", "/fapi/v1/openOrders",
          "/fapi/v1/openAlgoOrders", "/fapi/v2/account", "/fapi/v3/account",
          "/fapi/v2/balance", "/fapi/v3/balance", "/fapi/v1/premiumIndex",
          "/fapi/v1/ticker/bookTicker", "/fapi/v1/klines", "/fapi/v1/order",
          "/fapi/v1/algoOrder", "/fapi/v1/userTrades", "/fapi/v1/income",
          "/fapi/v1/exchangeInfo", "/fapi/v1/time", "/fapi/v1/listenKey",
          "/fapi/v1/allOrders", "/fapi/v1/leverageBracket", "/fapi/v1/commissionRate",
          "/fapi/v1/ping"]


class ShiftedClock:
    """Wall-clock time moved forward by `shift()`; sleeps are real (the sockets' timeouts)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def shift(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@asynccontextmanager
async def long_position(tmp_path) -> AsyncIterator[tuple[FakeBinance, Engine, ShiftedClock]]:
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.100"))
        settings = settings_for(fake, db_path=tmp_path / "tradebot.db", tick_seconds=2.0,
                                sentinel_debounce_seconds=0, sentinel_debounce_cycles=1)
        clock = ShiftedClock()
        exchange = BinanceExchange(settings, clock, streams=False, retry_policy=FAST)
        await exchange.start([SYMBOL], settings.leverage)
        store = TradeStore.open(settings.db_path)
        engine = Engine(settings, exchange, store, clock, Alerter(store))
        try:
            await boot(engine)
            await engine.tick()
            assert SYMBOL in engine.positions
            yield fake, engine, clock
        finally:
            await exchange.close()
            store.close()


def alerts(engine: Engine, name: str) -> list[str]:
    return [a.text for a in engine.store.recent_alerts(200) if a.name == name]


def fail_everything(fake: FakeBinance) -> None:
    for path in ROUTES:
        fake.inject_fault(path, http_status=503, times=1_000_000,
                          msg="Unknown error, please check your request or try again later.")


async def test_a_rest_outage_warns_then_turns_unhealthy_and_its_end_is_told(tmp_path):
    async with long_position(tmp_path) as (fake, engine, clock):
        presence = AgentPresence(engine.store, lambda: engine.ticks, engine.wakeup, clock,
                                 replay=False)
        monitor = HealthMonitor(engine, presence, clock)

        def view():
            presence.last_tick_at = clock.now()           # the engine ticks on
            return monitor.view()

        fail_everything(fake)
        await engine.tick()
        first = view()
        assert first.healthy and first.warnings == [], "one failed read is not a warning yet"

        clock.shift(31)                                   # past max(3 x 2 s, 30 s)
        for _ in range(3):
            await engine.tick()
        warned = view()
        assert warned.healthy, warned.problems
        assert [w for w in warned.warnings if w.startswith("Binance REST not answering since ")
                and "(HTTP 503 x " in w], warned.warnings
        assert warned.exchange_rest.startswith("not answering since")
        assert "Exchange REST: not answering since" in health_text(warned)
        (unreachable,) = alerts(engine, "EXCHANGE_UNREACHABLE")   # once, not per tick
        assert "HTTP 503" in unreachable and "exchange-side orders" in unreachable
        status = format_status(status_view(engine))
        assert "Exchange not answering</b>: Binance REST not answering since" in status
        assert "last: " in status and "http=503" in status

        clock.shift(90)                                   # past max(12 x 2 s, 2 min)
        await engine.tick()
        down = view()
        assert not down.healthy and down.as_json()["status"] == "unhealthy"
        assert any("protection cannot be verified" in p for p in down.problems), down.problems
        assert len(alerts(engine, "EXCHANGE_UNREACHABLE")) == 1

        fake.clear_faults()
        await engine.tick()
        back = view()
        assert back.healthy and back.exchange_rest == "answering", back.problems
        assert not any("not answering" in w for w in back.warnings)
        assert "Exchange not answering" not in format_status(status_view(engine))
        (reachable,) = alerts(engine, "EXCHANGE_REACHABLE")
        assert "answering again" in reachable and "after 2 min" in reachable
        await engine.tick()
        assert len(alerts(engine, "EXCHANGE_REACHABLE")) == 1


async def test_one_failed_read_then_a_quiet_minute_is_no_outage(tmp_path):
    """The outage is measured on the evidence, first to last unanswered request: a flat
    account on healthy streams may send nothing for a minute after one failed read."""
    async with long_position(tmp_path) as (fake, engine, clock):
        presence = AgentPresence(engine.store, lambda: engine.ticks, engine.wakeup, clock,
                                 replay=False)
        monitor = HealthMonitor(engine, presence, clock)
        fail_everything(fake)
        await engine.tick()
        fake.clear_faults()
        clock.shift(60)                                   # nothing asked meanwhile
        presence.last_tick_at = clock.now()
        view = monitor.view()
        assert view.healthy and not [w for w in view.warnings if "not answering" in w]
        assert view.exchange_rest.startswith("not answering since")   # no answer yet
        pings = len(fake.requests("GET /fapi/v1/ping"))
        await engine.exchange_health.watch_rest(engine.positions, circuit_open=False)
        assert len(fake.requests("GET /fapi/v1/ping")) == pings + 1, "asked, nothing else did"
        assert alerts(engine, "EXCHANGE_UNREACHABLE") == []
        assert monitor.view().exchange_rest == "answering"          # seen at once
        await engine.exchange_health.watch_rest(engine.positions, circuit_open=False)
        assert len(fake.requests("GET /fapi/v1/ping")) == pings + 1, "no ping once answered"


async def test_while_nothing_else_asks_a_ping_keeps_the_outage_evidence_current(tmp_path):
    """A flat account on healthy streams asks once a minute: during an outage a ping every
    max(1 tick, 5 s) tells it goes on, so the warning and the verdict come in time."""
    async with long_position(tmp_path) as (fake, engine, clock):
        fail_everything(fake)
        await engine.tick()
        health = engine.exchange_health
        for _ in range(7):                                  # 7 x 5 s of nothing but pings
            clock.shift(5)
            await health.watch_rest(engine.positions, circuit_open=False)
        outage = health.rest_answers.outage() if health.rest_answers else None
        assert outage is not None and outage.span() >= 30, outage
        assert len(alerts(engine, "EXCHANGE_UNREACHABLE")) == 1
        clock.shift(2)                                      # within the ping's interval
        pings = len(fake.requests("GET /fapi/v1/ping"))
        await health.watch_rest(engine.positions, circuit_open=False)
        assert len(fake.requests("GET /fapi/v1/ping")) == pings, "not every tick"
        clock.shift(5)
        await health.watch_rest(engine.positions, circuit_open=True)
        assert len(fake.requests("GET /fapi/v1/ping")) == pings, "nothing inside a Retry-After"


def test_the_last_error_says_when_it_happened() -> None:
    """Review rv15 #8: "...429, nothing is sent for 18 s more" stayed after the close was
    done; with its time and age it reads as past."""
    now = datetime(2026, 12, 2, 12, 10, tzinfo=UTC)
    status = StatusView(
        mode="paper", run_state="running", equity=Decimal(0), free_margin=Decimal(0),
        positions=[], regimes={}, breakers=[], cooldowns={},
        last_error="close BTCUSDT: not sent: Binance rate limit (HTTP 429), nothing is sent "
                   "for 18 s more", uptime=timedelta(minutes=5), now=now,
        last_error_at=now - timedelta(minutes=2, seconds=5))
    assert ("<b>Last error</b> 12:07:55 UTC, 2 min ago: close BTCUSDT: not sent"
            in format_status(status))


@pytest.mark.parametrize("tick_seconds, bounds", [(2.0, (30.0, 120.0)), (0.5, (30.0, 120.0)),
                                                  (20.0, (60.0, 240.0))])
def test_the_bounds_follow_the_tick(tick_seconds: float, bounds: tuple[float, float]) -> None:
    from trader.exchange_health import rest_bounds  # here: the other tests run without it
    assert rest_bounds(tick_seconds) == bounds
