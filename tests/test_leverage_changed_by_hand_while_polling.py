"""With the user-data stream off (polling) or down, a leverage changed by hand on an open
position is read again on the reconciliation's cadence (TRADEBOT_RECONCILE_SECONDS): GET
/fapi/v1/symbolConfig (https://developers.binance.com/docs/derivatives/usds-margined-
futures/account/rest-api/Symbol-Config; positionRisk v3 has no leverage field). Nothing
else would tell it: the ACCOUNT_CONFIG_UPDATE that reports it
(.../user-data-streams/Event-Account-Configuration-Update-previous-Leverage-Update) goes to
no socket. Before, only a stream that came back triggered the read: polling kept the 5x
the position was opened with for good (/status, the margin estimates of its legs).

Weight: one read of weight 5 per open position per period (60 s by default), only while
polling; a flat symbol's leverage is set again at its next entry."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.fakes.binance_harness import SYMBOL, settings_for, started_exchange
from tests.fakes.binance_server import FakeBinance
from trader.clock import ManualClock
from trader.domain import Side

SYMBOL_CONFIG = "GET /fapi/v1/symbolConfig"
PERIOD = timedelta(seconds=60)
BY_HAND = 25
FLAT = "ETHUSDT"


async def test_polling_reads_the_leverage_again_once_per_reconciliation_period():
    async with FakeBinance(prices={SYMBOL: Decimal("50000"), FLAT: Decimal("3000")}) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.010"))
        clock = ManualClock(datetime.now(UTC))
        settings = settings_for(fake, reconcile_seconds=PERIOD.total_seconds())
        async with started_exchange(fake, clock=clock, settings=settings,
                                    symbols=(SYMBOL, FLAT)) as exchange:
            assert not exchange.streaming
            opened_with = (await exchange.position(SYMBOL)).leverage
            fake.sim.set_leverage(SYMBOL, BY_HAND)            # by hand, on the open position
            fake.clear_request_log()

            clock.advance(PERIOD - timedelta(seconds=1))
            assert (await exchange.position(SYMBOL)).leverage == opened_with
            assert not fake.requests(SYMBOL_CONFIG), "read before its period"

            clock.advance(timedelta(seconds=1))
            assert (await exchange.position(SYMBOL)).leverage == BY_HAND
            assert (await exchange.position(SYMBOL)).leverage == BY_HAND
            assert len(fake.requests(SYMBOL_CONFIG)) == 1, "not once per period"

            clock.advance(PERIOD)
            await exchange.position(FLAT)
            assert [r.params["symbol"] for r in fake.requests(SYMBOL_CONFIG)] == [SYMBOL], \
                "a flat symbol's leverage was read (its next entry sets it)"



async def test_polling_reads_a_leverage_the_start_could_not_read_once_per_period():
    """start() reads an open position's leverage once (positionRisk v3 has none); a refused
    read left it unknown, and the periodic read skipped an unknown leverage: the position
    showed the configured leverage for good (/status, its legs' margin estimates)."""
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        fake.sim.set_leverage(SYMBOL, BY_HAND)
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.010"))
        fake.inject_fault(SYMBOL_CONFIG, http_status=404, times=1)   # the start's read
        clock = ManualClock(datetime.now(UTC))
        settings = settings_for(fake, reconcile_seconds=PERIOD.total_seconds())
        async with started_exchange(fake, clock=clock, settings=settings) as exchange:
            assert len(fake.requests(SYMBOL_CONFIG)) == 1, "the start did not try to read it"
            fake.clear_request_log()

            clock.advance(PERIOD - timedelta(seconds=1))
            assert (await exchange.position(SYMBOL)).leverage == 0, "unknown, not a guess"
            assert not fake.requests(SYMBOL_CONFIG), "read before its period"

            clock.advance(timedelta(seconds=1))
            assert (await exchange.position(SYMBOL)).leverage == BY_HAND
            assert (await exchange.position(SYMBOL)).leverage == BY_HAND
            assert len(fake.requests(SYMBOL_CONFIG)) == 1, "not once per period"
