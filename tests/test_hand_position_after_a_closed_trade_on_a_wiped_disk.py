"""The same as tests/test_hand_position_after_a_closed_trade.py, but after a restart on a
wiped disk: the agent's SHORT was opened and closed (its record is gone with the disk, its
fills are still in Binance's trade history), then a LONG was opened by hand. The boot took
the old trade's entry fill for "its own" position and said "picked up its own LONG 0.1
again; protecting it (<the closed SHORT's key>)" (INFO, no RECONCILE_MISMATCH): the
operator was not told of a position nobody at the agent opened, and it ran under a
finished trade's key. A key recovered from fills alone names the position only if that
trade is not finished (its own exits closed less than its entries) and its entry was on
the position's side. Found in manual play (a hand BTC LONG after the agent's BTC SHORT
had stopped out, then `tradebot run` on a new database)."""

from datetime import UTC, datetime
from decimal import Decimal

from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted, market_up_to_now
from trader.commands import Command, CommandKind
from trader.domain import OrderType, Side

SYMBOL = "BTCUSDT"


async def test_a_hand_long_after_a_closed_short_on_a_wiped_disk_is_a_mismatch(tmp_path):
    async with FakeBinance(prices={SYMBOL: Decimal("50000")}) as fake:
        await market_up_to_now(fake)
        async with booted(fake, tmp_path / "first") as first:
            assert (await first.run(CommandKind.SHORT)).ok
            old_key = first.engine.positions[SYMBOL].key
            closed = await first.controller.run(Command(
                CommandKind.CLOSE, "tg:1:90", datetime.now(UTC), symbol=SYMBOL,
                source="telegram"))
            assert closed.ok, closed.lines
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.1"))
        async with booted(fake, tmp_path / "wiped") as second:
            position = second.engine.positions[SYMBOL]
            alerts = {a.name: a.text for a in second.engine.store.recent_alerts(20)}
            stops = [o for o in fake.sim.open_orders(SYMBOL) if o.type is OrderType.STOP_MARKET]
    assert position.side is Side.BUY and position.key != old_key, position
    assert "RECONCILE_MISMATCH" in alerts and "did not open" in alerts["RECONCILE_MISMATCH"], \
        alerts
    assert [o.side for o in stops] == [Side.SELL], stops
