"""The engine's periodic duties on the paper exchange: stale data blocks entries, gaps are
backfilled, a funding jump trips its breaker, old intents are cleaned up, a daily summary."""

from datetime import timedelta
from decimal import Decimal

from tests.engine_world import STEP, SYMBOL, make_world
from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side


async def test_stale_data_alerts_blocks_entries_and_clears_when_candles_resume(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    assert world.engine.entry_allowed(SYMBOL)
    world.clock.set(world.clock.now() + STEP * 3)      # the feed goes silent for 15 min
    await world.engine.tick()
    assert world.alerts("STALE_DATA")
    assert not world.engine.entry_allowed(SYMBOL)
    for _ in range(3):                                  # the exchange moved on meanwhile
        candle = world.candle(world.last_close)
        world.candles.append(candle)
        world.paper.feed_candle(candle)
    await world.step()                                  # candles resume
    await world.engine.tick()
    assert world.engine.entry_allowed(SYMBOL)
    assert any("resumed" in text for text in world.alerts("DATA_RESUMED"))


async def test_a_gap_in_the_feed_is_backfilled_from_the_exchange(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up()
    for _ in range(3):                      # the exchange saw these; our feed dropped them
        candle = world.candle(world.last_close)
        world.candles.append(candle)
        world.paper.feed_candle(candle)
    await world.step()
    await world.engine.tick()
    times = [c.open_time for c in world.engine.candles[SYMBOL]]
    assert all(later - earlier == STEP for earlier, later in zip(times, times[1:], strict=False))
    assert len(times) == len(world.candles)


async def test_a_funding_jump_within_the_hour_trips_the_funding_breaker(tmp_path):
    world = await make_world(tmp_path)
    world.paper.sim.set_funding_rate(SYMBOL, Decimal("0.0001"))
    await world.warm_up(3)
    world.paper.sim.set_funding_rate(SYMBOL, Decimal("0.0015"))
    await world.step()
    await world.step()
    assert world.alerts("BREAKER_TRIPPED")
    assert not world.engine.entry_allowed(SYMBOL)


async def test_intents_older_than_six_hours_are_cleaned_up(tmp_path):
    world = await make_world(tmp_path)
    old = world.clock.now()
    done = Intent("tb-BTCUSDT-old-sl1", SYMBOL, OrderRole.STOP_LOSS, Side.SELL, OrderType.STOP_MARKET,
                  Decimal("0.01"), "old", old, status=IntentStatus.EXPIRED)
    never_sent = Intent("tb-BTCUSDT-old-tp1", SYMBOL, OrderRole.TAKE_PROFIT, Side.SELL,
                        OrderType.TAKE_PROFIT_MARKET, Decimal("0.01"), "old", old)
    world.store.save_intent(done)
    world.store.save_intent(never_sent)
    world.clock.set(old + timedelta(hours=7))
    await world.engine.housekeeping.clean_intents()
    assert world.store.intent(done.client_id) is None
    assert world.store.intent(never_sent.client_id) is None      # expired, then purged
    assert world.store.unresolved_intents() == []


async def test_a_daily_summary_goes_out_once_a_day(tmp_path):
    world = await make_world(tmp_path)
    await world.warm_up(3)
    world.clock.set(world.clock.now() + timedelta(days=1))
    await world.step()
    await world.step()
    summaries = world.alerts("DAILY_SUMMARY")
    assert len(summaries) == 1 and "equity" in summaries[0]
    assert "unknown result" not in summaries[0]


async def test_the_daily_summary_names_closes_whose_result_is_unknown(tmp_path):
    """A close whose fills could not be read counts in no sum: the summary says it left it
    out rather than showing a day without it (trader/close_readback.py reads it later)."""
    from tests.positions import make
    from trader.domain import CloseReason
    from trader.position import PositionState
    world = await make_world(tmp_path)
    await world.warm_up(3)
    now = world.clock.now()
    world.store.save_position(make(state=PositionState.CLOSED, quantity="0",
                                   opened_at=now - timedelta(minutes=10), closed_at=now,
                                   close_reason=CloseReason.STOP_LOSS, exit_price=None))
    world.clock.set(now + timedelta(days=1))
    await world.step()
    [summary] = world.alerts("DAILY_SUMMARY")
    assert "0 trades" in summary
    assert "+ 1 closed with an unknown result (fills not read yet), not counted" in summary


async def test_the_daily_summary_names_fees_in_bnb_it_could_not_value(tmp_path):
    """A close whose fees in BNB could not be priced (trader/fee_value.py): counted, but
    neither a win nor a net that claims to include them."""
    from tests.positions import make
    from trader.domain import CloseReason, FeeInKind
    from trader.position import PositionState
    world = await make_world(tmp_path)
    await world.warm_up(3)
    now = world.clock.now()
    world.store.save_position(make(
        state=PositionState.CLOSED, quantity="0", opened_at=now - timedelta(minutes=10),
        closed_at=now, close_reason=CloseReason.TAKE_PROFIT, exit_price=Decimal("50500"),
        realized_pnl=Decimal("10"), fees_in_kind=(FeeInKind("BNB", Decimal("0.0416")),)))
    world.clock.set(now + timedelta(days=1))
    await world.step()
    [summary] = world.alerts("DAILY_SUMMARY")
    assert "1 trade, 0 won" in summary, summary
    assert "(+ fees of 0.0416 BNB not valued in USDT, not in the net)" in summary, summary


async def test_resolved_intents_are_purged_in_batches_once_the_oldest_is_past_the_slack(tmp_path):
    """Resolved intents older than 6 h go together, once the oldest is 7.5 h old: one
    DELETE per ~1.5 h rather than one per cleanup run. Newer ones stay."""
    world = await make_world(tmp_path)
    start = world.clock.now()

    def resolved(name: str, minutes: int) -> Intent:
        return Intent(f"tb-BTCUSDT-{name}-sl1", SYMBOL, OrderRole.STOP_LOSS, Side.SELL,
                      OrderType.STOP_MARKET, Decimal("0.01"), name,
                      start + timedelta(minutes=minutes), status=IntentStatus.FILLED)
    old, newer, recent = resolved("a", 0), resolved("b", 60), resolved("c", 400)
    for intent in (old, newer, recent):
        world.store.save_intent(intent)
    world.clock.set(start + timedelta(hours=7))         # "a" is 7 h old: not yet
    await world.engine.housekeeping.clean_intents()
    assert world.store.intent(old.client_id) is not None
    world.clock.set(start + timedelta(hours=7, minutes=31))    # "a" 7.5 h, "b" 6.5 h old
    await world.engine.housekeeping.clean_intents()
    assert world.store.intent(old.client_id) is None
    assert world.store.intent(newer.client_id) is None
    assert world.store.intent(recent.client_id) is not None


async def test_an_intent_saved_unresolved_after_the_first_cleanup_is_still_expired(tmp_path):
    """The cleanup asks `has_unresolved_before` (the unresolved intents kept with each save)
    before listing them: an intent saved after the first cleanup read them, never sent, is
    expired once 6 h old; one that was resolved meanwhile is not stuck (negative test of
    the kept set: fails if a save does not keep it)."""
    world = await make_world(tmp_path)
    start = world.clock.now()

    def intent(name: str, minutes: int, status: IntentStatus) -> Intent:
        return Intent(f"tb-BTCUSDT-{name}-sl1", SYMBOL, OrderRole.STOP_LOSS, Side.SELL,
                      OrderType.STOP_MARKET, Decimal("0.01"), name,
                      start + timedelta(minutes=minutes), status=status)
    world.store.save_intent(intent("a", 0, IntentStatus.FILLED))
    world.clock.set(start + timedelta(hours=6, minutes=30))
    await world.engine.housekeeping.clean_intents()         # reads the intents: none stuck
    never_sent = intent("p", 10, IntentStatus.PENDING)
    answered = intent("q", 10, IntentStatus.PENDING)
    world.store.save_intent(never_sent)
    world.store.save_intent(answered)
    world.store.save_intent(answered.with_status(IntentStatus.FILLED))
    assert world.store.has_unresolved_before(start + timedelta(minutes=11))
    assert not world.store.has_unresolved_before(start + timedelta(minutes=10))
    world.clock.set(start + timedelta(hours=7))
    await world.engine.housekeeping.clean_intents()
    assert world.store.intent(never_sent.client_id) is None      # expired, then purged
    assert world.store.unresolved_intents() == []
    assert not world.store.has_unresolved_before(start + timedelta(hours=7))


async def test_the_daily_summary_counts_open_positions_as_balance_does(tmp_path):
    """An entry still waiting for its fill (a maker quote resting) holds nothing yet: the
    summary's "open positions" are those /balance counts (`PositionState.open`)."""
    from tests.positions import make
    from trader.position import PositionState
    world = await make_world(tmp_path)
    await world.warm_up(3)
    held = make(key="held")
    quoting = make(symbol="ETHUSDT", state=PositionState.ENTERING, key="quoting")
    summary_of = world.engine.housekeeping.daily_summary
    await summary_of([held, quoting], world.engine.balance)            # the first day: remembered
    world.clock.set(world.clock.now() + timedelta(days=1))
    await summary_of([held, quoting], world.engine.balance)
    [summary] = world.alerts("DAILY_SUMMARY")
    assert summary.endswith("; 1 open position"), summary
