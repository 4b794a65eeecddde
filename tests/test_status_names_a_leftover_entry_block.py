"""/status (and /start) name a symbol whose entries are refused because a leftover order of
ours the exchange will not cancel is still listed: the client id and what to do.

Found by review6 (test_rv6_leftover_block_on_status.py): cf06b25 refuses entries on a symbol
while such a leftover is listed and says it once in a PROTECTION alert, but /status, where an
operator looks for "why no trades?", read "Breakers none" and nothing about the symbol.
"""

from dataclasses import replace

from bot.format import format_start, format_status, plain_text
from tests.fakes.binance_harness import eventually
from tests.fakes.binance_server import FakeBinance
from tests.test_binance_protection import PRICE, SYMBOL, running_agent
from tests.test_bot_support import SYMBOLS, RecordingEngine
from tests.test_stop_stuck_triggering import BOUND, GRACE, alerts, flat, stuck_stop
from trader.alerts import AlertName
from trader.views import status_view


async def test_status_names_the_symbol_blocked_by_a_leftover_that_cannot_be_cancelled(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}, flat_orders="keep") as fake, \
            running_agent(fake, tmp_path, streams=True, trigger_grace_seconds=GRACE) as engine:
        stop_id, _ = await stuck_stop(fake, engine)
        assert await eventually(lambda: SYMBOL not in engine.positions and flat(fake), BOUND)
        assert await eventually(lambda: alerts(engine, AlertName.PROTECTION), BOUND)
        refusal = engine.entry_refusal(SYMBOL)
        assert stop_id in refusal, refusal
        view = status_view(engine)
        for text in (format_status(view), format_start(view)):
            shown = plain_text(text)
            assert f"No entries {SYMBOL}" in shown and stop_id in shown \
                and "cancel it in the Binance app" in shown, shown


async def test_negative_status_without_a_leftover_has_no_entry_block_line(tmp_path):
    async with FakeBinance(prices={SYMBOL: PRICE}) as fake, \
            running_agent(fake, tmp_path, streams=True) as engine:
        assert engine.entry_refusal(SYMBOL) == ""
        view = status_view(engine)
        assert view.entry_blocks == []
        assert "No entries" not in plain_text(format_status(view))


def test_each_block_is_a_line_of_its_own():
    status = replace(RecordingEngine(SYMBOLS).status(), entry_blocks=[
        "BTCUSDT: an old order of ours that cannot be cancelled is still listed (tb-a-sl1); "
        "cancel it in the Binance app first",
        "ETHUSDT: an old order of ours that cannot be cancelled is still listed (tb-b-tp1); "
        "cancel it in the Binance app first"])
    lines = [line for line in plain_text(format_status(status)).splitlines()
             if line.startswith("⛔ No entries")]
    assert [line.split()[3] for line in lines] == ["BTCUSDT:", "ETHUSDT:"], lines
