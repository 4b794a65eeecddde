"""`tradebot run` with a SHORT opened by hand on a symbol it does not trade (rv15 s03): the
STARTUP said nothing of it and SIGTERM's SHUTDOWN was the calm INFO "positions protected by
exchange-side orders" while it stayed open with no stop. Both name it now, "not managed by
the agent", and the SHUTDOWN sounds (CRITICAL): nothing protects it. Process level, as the
operator's phone sees it (tests/test_shutdown_cut_short_by_sigterm.py's harness)."""

from decimal import Decimal
from pathlib import Path

from tests.fakes.binance_server import FakeBinance
from tests.fakes.telegram_server import FakeTelegram
from tests.test_shutdown_cut_short_by_sigterm import BOUND, Agents, market_for, texts
from trader.domain import Side

OTHER = "ETHUSDT"


async def test_startup_and_shutdown_name_a_hand_short_on_a_symbol_not_traded(tmp_path: Path):
    async with FakeBinance(prices={"BTCUSDT": Decimal("50000"), OTHER: Decimal("3000")}) \
            as fake, FakeTelegram() as telegram:
        await market_for(fake)
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        agents = Agents(fake, telegram, tmp_path)
        agent = await agents.start("first")
        try:
            started = await telegram.wait_for(
                lambda item: "tradebot started" in (item.plain or ""), timeout=BOUND)
            since = len(telegram.sent)
        finally:
            await agents.stopped(agent)
        assert f"{OTHER} SHORT 3 @" in (started.plain or ""), started.plain
        assert "not managed by the agent, NO stop-loss seen" in (started.plain or "")
        [down] = texts(telegram, since, "going down")
        assert f"going down with {OTHER} WITHOUT a stop-loss seen" in down, down
        assert "CRITICAL" in down and "protected by exchange-side orders" not in down, down
