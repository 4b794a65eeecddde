"""Money views from the phone, end to end: the real python-telegram-bot against the fake Bot
API, the real engine on the paper exchange. One trade pays funding while it is open and is
stopped out; every view says the same realised PnL: net of fees and funding."""

import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from loguru import logger

from bot.app import TelegramBot
from tests.engine_world import START, SYMBOL, World, long_signal, make_world
from tests.fakes.telegram_server import FakeTelegram, SentItem
from tests.test_bot_engine import running_bot
from tests.test_bot_support import OWNER
from trader.display import money
from trader.log_ring import RECENT
from trader.logs import register_secret, setup_logging
from trader.position import Position

FUNDING_RATE = Decimal("0.0001")     # a long pays 0.01 % of its notional


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    """A long that paid one funding settlement, then was stopped out."""
    world = await make_world(tmp_path, HEARTBEAT_URL="https://hc-ping.com/0d1f-secret-uuid",
                             TELEGRAM_BOT_TOKEN="123456:token-in-the-config",
                             TELEGRAM_ALLOWED_CHAT_IDS=str(OWNER))
    await world.warm_up()
    world.strategy.next = long_signal("0.01", "0.04")
    await world.step()
    position = world.engine.positions[SYMBOL]
    world.paper.sim.set_funding_rate(SYMBOL, FUNDING_RATE)
    world.paper.publish(world.paper.sim.apply_funding(SYMBOL, world.clock.now()))
    await world.step()
    await world.step(position.stop.trigger_price - 50, low=position.stop.trigger_price - 200)
    assert SYMBOL not in world.engine.positions
    yield world


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(world: World, telegram: FakeTelegram) -> AsyncIterator[TelegramBot]:
    async with running_bot(world, telegram) as sink:
        yield sink


def trade(world: World) -> Position:
    [closed] = world.store.closed_positions()
    return closed


def funding_paid(world: World) -> Decimal:
    return sum((f.amount for f in world.store.funding_payments()), Decimal(0))


async def ask(telegram: FakeTelegram, text: str, containing: str) -> SentItem:
    since = len(telegram.sent)
    telegram.inject_message(OWNER, OWNER, text)
    return await telegram.wait_for(lambda item: item.method == "sendMessage"
                                   and containing in (item.plain or ""), since=since, timeout=10)


def test_funding_paid_while_open_is_journaled_with_its_symbol(world):
    closed = trade(world)
    [payment] = world.store.funding_payments()
    assert payment.symbol == SYMBOL and closed.opened_at <= payment.at <= closed.closed_at
    notional = closed.initial_quantity * closed.entry_price
    assert payment.amount == -(notional * FUNDING_RATE).quantize(Decimal("0.01"))
    assert world.paper.funding_total() == payment.amount


def test_close_alert_says_net_of_fees_and_funding_with_the_price_on_the_tick(world):
    closed = trade(world)
    net = closed.realized_pnl - closed.fees + funding_paid(world)
    [text] = world.alerts("CLOSE")
    assert f"closed (STOP_LOSS) at {closed.exit_price.quantize(Decimal('0.1')):,}" in text
    assert f"PnL {money(net, signed=True)} USDT net (fees {money(closed.fees)}, " \
           f"funding {money(funding_paid(world), signed=True)}), held 10 min" in text


@pytest.mark.parametrize("text", ["/pnl", "/pnl week", "/pnl month", "/pnl all", "/profit"])
async def test_pnl_of_every_period_counts_the_funding_paid_in_it(world, telegram, bot, text):
    closed = trade(world)
    funding = funding_paid(world)
    assert funding < 0
    reply = await ask(telegram, text, "Realised")
    net = closed.realized_pnl - closed.fees + funding
    assert f"Realised {money(net, signed=True)} USDT net of fees and funding" in reply.plain
    assert f"gross {money(closed.realized_pnl, signed=True)} · fees " \
           f"{money(-closed.fees, signed=True)} · funding {money(funding, signed=True)}" \
           in reply.plain
    assert "1 trade · 0 won (0%)" in reply.plain


async def test_daily_table_has_the_day_its_trade_its_net_and_percent_of_the_wallet(
        world, telegram, bot):
    closed = trade(world)
    net = closed.realized_pnl - closed.fees + funding_paid(world)
    wallet = world.engine.balance.wallet
    reply = await ask(telegram, "/daily 3", "Daily PnL")
    rows = reply.plain.splitlines()
    today = next(row for row in rows if row.startswith("2026-01-05"))
    assert today.split() == ["2026-01-05", "1", money(net, signed=True),
                             f"{(net / (wallet - net) * 100).quantize(Decimal('0.01')):+}%"]
    assert [row.split()[0] for row in rows if row.startswith("2026-")] == [
        "2026-01-05", "2026-01-04", "2026-01-03"]
    assert f"Total {money(net, signed=True)} USDT over 1 trade" in reply.plain


@pytest.mark.parametrize(("text", "title", "first"), [
    ("/weekly", "Weekly PnL", "2026-01-05"), ("/monthly 2", "Monthly PnL", "2026-01")])
async def test_weekly_and_monthly_tables_start_on_monday_and_the_first(world, telegram, bot,
                                                                       text, title, first):
    reply = await ask(telegram, text, title)
    rows = [row.split() for row in reply.plain.splitlines() if row.startswith("20")]
    assert rows[0][:2] == [first, "1"]
    assert all(row[1] == "0" for row in rows[1:])


async def test_performance_and_trades_show_the_trade_net_of_its_funding(world, telegram, bot):
    closed = trade(world)
    net = money(closed.realized_pnl - closed.fees + funding_paid(world), signed=True)
    performance = await ask(telegram, "/performance", "Performance by symbol")
    assert ["BTCUSDT", "1", "0%", net] in [row.split() for row in performance.plain.splitlines()]
    trades = await ask(telegram, "/trades 5", "Last 1 trade")
    line = trades.plain.splitlines()[1]
    entry = f"{closed.entry_price.quantize(Decimal('0.1')).normalize():,f}"
    assert f"BTCUSDT LONG {closed.initial_quantity.normalize()} · {entry} → " \
           f"{closed.exit_price.quantize(Decimal('0.1')):,}" in line
    assert f"{net} USDT" in line and "STOP_LOSS · 10 min" in line


async def test_balance_shows_wallet_equity_margin_and_todays_realised(world, telegram, bot):
    balance = world.engine.balance
    closed = trade(world)
    net = closed.realized_pnl - closed.fees + funding_paid(world)
    reply = await ask(telegram, "/balance", "Balance")
    assert f"Wallet {money(balance.wallet)} USDT" in reply.plain
    assert f"Equity {money(balance.equity)} USDT · free margin {money(balance.available)}" \
        in reply.plain
    assert f"Today realised {money(net, signed=True)} USDT net (1 trade) · 0 open positions" \
        in reply.plain


async def test_daily_summary_counts_funding_and_says_1_trade(world):
    world.clock.set(START + timedelta(days=1, minutes=1))     # just after midnight UTC
    await world.step()
    closed = trade(world)
    net = closed.realized_pnl - closed.fees + funding_paid(world)
    [summary] = world.alerts("DAILY_SUMMARY")
    assert f"1 trade, 0 won, realised {money(net, signed=True)} USDT net of fees and funding" \
        in summary
    assert "0 open positions" in summary


async def test_logs_shows_recent_warnings_with_secrets_masked(world, telegram, bot):
    setup_logging(level="INFO")           # what `tradebot run` does: the /logs ring included
    register_secret("sk-very-secret-value")
    try:
        logger.info("routine line, not a warning")
        logger.warning("feed stalled symbol=BTCUSDT key=sk-very-secret-value")
        logger.error("order rejected code=-2019 <margin>")
        reply = await ask(telegram, "/logs 2", "Last 2 warnings and errors")
    finally:
        logger.remove()
        logger.add(sys.stderr)
        RECENT.records.clear()
    lines = reply.plain.splitlines()
    assert "feed stalled symbol=BTCUSDT key=********" in lines[1]
    assert "order rejected code=-2019 <margin>" in lines[2] and "❗" in lines[2]
    assert "sk-very-secret-value" not in reply.plain and "routine line" not in reply.plain


async def test_version_and_masked_config(world, telegram, bot):
    version = await ask(telegram, "/version", "Version")
    assert "tradebot 0.1.0" in version.plain and "python-telegram-bot" in version.plain
    config = await ask(telegram, "/config", "Configuration")
    assert "TRADEBOT_SYMBOLS=BTCUSDT" in config.plain
    assert "TELEGRAM_BOT_TOKEN=********" in config.plain
    assert "HEARTBEAT_URL=https://hc-ping.com/…" in config.plain
    assert "token-in-the-config" not in config.plain and "secret-uuid" not in config.plain
