"""/close of a position whose entry's answer was lost (the order request timed out, it
filled on the exchange, and asking for it by client id failed too): the close adopted the
position as if a restart had found it, and the alert read "picked up its own LONG again;
protecting it". The close now settles the entry first, by client id, the way the next tick
would, says so in the operator's words, and closes it."""

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.format import format_result
from tests.engine_world import SYMBOL, World, make_world
from trader.commands import CommandKind
from trader.exchange.base import UnknownOutcome


def lose_the_entry_answer(world: World, lands: bool = True) -> dict[str, bool]:
    """The next order's request times out: it is placed (`lands`) or never reaches the
    exchange, and every probe of it by client id fails too until `lost["probes"]` is set
    False."""
    paper, lost = world.paper, {"probes": False}
    real_place, real_probe = paper.place, paper.order_by_client_id

    async def place_then_time_out(request):  # type: ignore[no-untyped-def]
        if lands:
            await real_place(request)
        paper.place = real_place
        lost["probes"] = True
        raise UnknownOutcome("place: timeout (test)")

    async def probe(symbol, client_id):  # type: ignore[no-untyped-def]
        if lost["probes"]:
            raise UnknownOutcome("query order: timeout (test)")
        return await real_probe(symbol, client_id)

    paper.place, paper.order_by_client_id = place_then_time_out, probe
    return lost


async def test_close_of_an_entry_whose_answer_was_lost_settles_it_then_closes(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    lost = lose_the_entry_answer(world)
    entry = await world.command(CommandKind.LONG, symbol=SYMBOL)
    assert (await world.paper.position(SYMBOL)).quantity > 0, entry.lines     # it filled
    lost["probes"] = False                                    # the exchange answers again
    alerts_before = {a.id for a in world.store.recent_alerts(100)}
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL)
    text = format_result(CommandKind.CLOSE, result)
    assert (await world.paper.position(SYMBOL)).quantity == 0, text
    assert result.ok and text.startswith("✅"), text
    assert f"{SYMBOL}: the LONG entry whose answer was lost filled" in text, text
    new = [a.text for a in world.store.recent_alerts(100) if a.id not in alerts_before]
    assert not any("picked up" in a or "did not open" in a for a in new), new
    assert Decimal(0) == (await world.paper.position(SYMBOL)).quantity


@pytest.mark.parametrize(("source", "sent"), [("telegram", False), ("cli", True)])
async def test_close_of_a_lost_entry_that_never_filled_says_it_once(tmp_path, source, sent):
    """The /close's reply says the entry did not fill: its ENTRY_NOT_FILLED is kept for
    /alerts, not sent to the phone again. Asked from the shell (`tradebot close`), the
    phone heard nothing: the alert goes."""
    world = await make_world(tmp_path)
    await world.warm_up()
    lost = lose_the_entry_answer(world, lands=False)
    await world.command(CommandKind.LONG, symbol=SYMBOL)
    lost["probes"] = False                                    # the exchange answers again
    # past recvWindow + skew: an order the exchange does not know now never will be
    world.clock.set(world.clock.now() + timedelta(minutes=2))
    result = await world.command(CommandKind.CLOSE, symbol=SYMBOL, source=source)
    text = format_result(CommandKind.CLOSE, result)
    assert f"{SYMBOL}: the LONG entry whose answer was lost did not fill; nothing is open" \
        in text, text
    [alert] = [a for a in world.store.recent_alerts(100) if a.name == "ENTRY_NOT_FILLED"]
    assert [a.outbox_id for a in world.engine.alerter.pending()
            if a.name == "ENTRY_NOT_FILLED"] == ([alert.id] if sent else [])
    assert alert.status == ("pending" if sent else "answered")
