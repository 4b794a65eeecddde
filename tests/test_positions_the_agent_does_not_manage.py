"""Positions on the account the agent does not manage were invisible, and the replies about
them false (found by a reviewer, rv15 s03/s11): a SHORT opened by hand on a symbol the agent
does not trade (ETHUSDT) read "Positions: none open" in /status and /positions, "0 open
positions" in /balance while its PnL and margin were in the equity, and SIGTERM's SHUTDOWN
said the calm "positions protected by exchange-side orders" with it open and no stop. The
same with TRADEBOT_ADOPT_POSITIONS=false for a hand LONG on the traded symbol. README:
/status shows each position; SHUTDOWN is CRITICAL when one goes down without a stop-loss.

They are shown as the exchange last showed them (the balance read, GET /fapi/v2/account,
lists every symbol's position; the user-data stream tells them as they change), marked "not
managed by the agent", with whether a stop-loss order is seen covering them."""

from datetime import UTC, datetime
from decimal import Decimal

from bot.format import format_result
from tests.fakes.binance_server import FakeBinance
from tests.test_first_command_after_boot import booted
from trader.alerts import Severity
from trader.commands import ALL_SYMBOLS, Command, CommandKind, CommandResult
from trader.control import Controller
from trader.domain import Side, to_ms
from trader.going_down import going_down_alert

SYMBOL, OTHER = "BTCUSDT", "ETHUSDT"
PRICES = {SYMBOL: Decimal("50000"), OTHER: Decimal("3000")}


async def ask(controller: Controller, kind: CommandKind, message_id: int = 2) -> str:
    result: CommandResult = await controller.execute(
        Command(kind, f"tg:1:{message_id}", datetime.now(UTC), source="telegram"))
    return format_result(kind, result)


async def test_a_hand_short_on_a_symbol_not_traded_is_shown_counted_and_sounds_at_shutdown(
        tmp_path):
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path) as agent:
            controller = agent.controller
            await controller.engine.tick()
            status = await ask(controller, CommandKind.STATUS)
            assert "none open" not in status, status
            assert f"<b>{OTHER}</b> SHORT 3 @ " in status, status
            assert "not managed by the agent" in status and "SL ❌ none" in status, status
            assert "as the exchange showed it" in status, status
            positions = await ask(controller, CommandKind.POSITIONS, 3)
            assert "Positions (1)" in positions and OTHER in positions, positions
            balance = await ask(controller, CommandKind.BALANCE, 4)
            assert "1 open position" in balance, balance
            alert = going_down_alert(controller.engine)
            assert alert.level is Severity.CRITICAL, alert.text
            assert f"going down with {OTHER} WITHOUT a stop-loss seen" in alert.text
            assert "protected by exchange-side orders" not in alert.text


async def test_a_hand_long_left_alone_with_adoption_off_is_shown(tmp_path):
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(SYMBOL, Side.BUY, Decimal("0.5"))
        async with booted(fake, tmp_path, adopt_positions=False) as agent:
            controller = agent.controller
            await controller.engine.tick()
            assert SYMBOL not in controller.engine.positions
            status = await ask(controller, CommandKind.STATUS)
            assert f"<b>{SYMBOL}</b> LONG 0.5" in status, status
            assert "not managed by the agent" in status, status
            alert = going_down_alert(controller.engine)
            assert alert.level is Severity.CRITICAL, alert.text
            assert f"{SYMBOL} WITHOUT a stop-loss seen" in alert.text, alert.text


async def close(controller: Controller, symbol: str, message_id: int = 5) -> CommandResult:
    return await controller.run(Command(CommandKind.CLOSE, f"tg:1:{message_id}",
                                        datetime.now(UTC), symbol=symbol, source="telegram"))


async def test_close_of_a_symbol_not_traded_closes_the_hand_position(tmp_path):
    """`/close ETHUSDT` answered "unknown symbol"; README: /close closes "a position the agent
    does not manage". Closed at market, reduce-only, as the agent's own closes are; said
    done only once the read back shows it flat."""
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path) as agent:
            controller = agent.controller
            assert controller.closable(OTHER) == [OTHER]
            result = await close(controller, OTHER)
            text = format_result(CommandKind.CLOSE, result)
            assert fake.sim.position(OTHER).quantity == 0, text
            assert result.ok and text.startswith("✅"), text
            assert f"{OTHER}: closed at" in text, text
            assert not fake.sim.open_orders(OTHER), text


async def test_close_all_closes_a_hand_position_on_a_symbol_not_traded(tmp_path):
    """`/close all` asked, then answered "Close: done" with the ETHUSDT short still open."""
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        async with booted(fake, tmp_path) as agent:
            controller = agent.controller
            assert OTHER in controller.closable(ALL_SYMBOLS)
            result = await close(controller, ALL_SYMBOLS)
            text = format_result(CommandKind.CLOSE, result)
            assert fake.sim.position(OTHER).quantity == 0, text
            assert result.ok and f"{OTHER}: closed at" in text, text


async def test_a_symbol_nobody_holds_is_nothing_to_close(tmp_path):
    async with FakeBinance(prices=PRICES) as fake, booted(fake, tmp_path) as agent:
        assert agent.controller.closable("XRPUSDT") == []


async def test_a_hand_position_taken_over_by_close_is_held_since_its_change_on_the_exchange(
        tmp_path):
    """The CLOSE of a hand position /close took over said "held 0 s": its time is counted
    from the exchange's last change of it (positionRisk "updateTime"), not the take-over."""
    async with FakeBinance(prices=PRICES) as fake:
        await fake.open_position_by_hand(OTHER, Side.SELL, Decimal("3"))
        changed = fake.endpoints.ledger.position_changed_ms(fake.sim.position(OTHER))
        async with booted(fake, tmp_path) as agent:
            result = await close(agent.controller, OTHER)
            assert result.ok, result.lines
            [closed] = [p for p in agent.engine.store.closed_positions() if p.symbol == OTHER]
            assert to_ms(closed.opened_at) == changed
