"""The paper state's live orders written from texts kept save after save
(trader/exchange/sim_state.py `LiveOrderTexts`) are the text written afresh from the whole
state: on random scripts of orders, fills, cancels and candles, and with the same client id
live on two symbols; and a save writes again only the orders that changed."""

import contextlib
import json
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.codec import dump, to_json
from tests.test_sim_shortcuts import BTC, T0, actions, candles, run_action, run_candle
from trader.domain import OrderRequest, OrderRole, OrderType, Side
from trader.exchange import sim_state
from trader.exchange.base import ExchangeError
from trader.exchange.sim import SimConfig, Simulator
from trader.exchange.sim_state import HistoryLog, LiveOrderTexts, _account_state, account_json


def written_afresh(sim: Simulator) -> str:
    """What `account_json` wrote before it kept texts."""
    return json.dumps({**_account_state(sim),
                       "orders": {"live": [dump(o) for o in sim.orders.live.values()]}})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(actions, candles), min_size=1, max_size=30))
def test_kept_texts_write_what_the_whole_state_writes(script: list[tuple]) -> None:
    sim, texts, now = Simulator(SimConfig(balance=D("2000"))), LiveOrderTexts(), T0
    sim.set_price(BTC, D("70000"), now)
    for n, (action, (prices, minutes, pause)) in enumerate(script):
        if action is not None:
            with contextlib.suppress(ExchangeError):    # a rejected order changes nothing
                run_action(sim, action, now, n)
        assert account_json(sim, texts) == written_afresh(sim)
        run_candle(sim, prices, now, timedelta(minutes=minutes))
        assert account_json(sim, texts) == written_afresh(sim)
        now += timedelta(minutes=minutes + 5 * pause)


def stop(symbol: str, client_id: str, trigger: str) -> OrderRequest:
    return OrderRequest(symbol, Side.SELL, OrderType.STOP_MARKET, D("0.01"), client_id,
                        OrderRole.STOP_LOSS, trigger_price=D(trigger), reduce_only=False)


def test_one_client_id_live_on_two_symbols_is_written_twice() -> None:
    sim, texts = Simulator(SimConfig(balance=D("2000"))), LiveOrderTexts()
    sim.set_price(BTC, D("70000"), T0)
    sim.set_price("ETHUSDT", D("3000"), T0)
    sim.place(stop(BTC, "same", "69000"), T0)
    sim.place(stop("ETHUSDT", "same", "2900"), T0)
    assert account_json(sim, texts) == written_afresh(sim)
    assert len(json.loads(account_json(sim, texts))["orders"]["live"]) == 2


def test_a_save_writes_again_only_the_orders_that_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sim, texts = Simulator(SimConfig(balance=D("2000"))), LiveOrderTexts()
    sim.set_price(BTC, D("70000"), T0)
    sim.place(stop(BTC, "a", "69000"), T0)
    sim.place(stop(BTC, "b", "68000"), T0)
    account_json(sim, texts)
    dumped: list[Any] = []
    monkeypatch.setattr(sim_state, "to_json",
                        lambda value: dumped.append(value) or to_json(value))
    sim.place(stop(BTC, "c", "67000"), T0)
    assert account_json(sim, texts) == written_afresh(sim)
    assert [order.client_id for order in dumped] == ["c"]      # "a" and "b" as kept


@given(st.lists(st.one_of(st.integers(0, 9), st.just("save")), max_size=60))
def test_pending_writes_every_unsaved_chunk_still_kept_in_order(script: list[Any]) -> None:
    """`pending` (searching from the newest chunk) against its definition."""
    log = HistoryLog(keep=7, chunk_size=3)
    for step in script:
        if step == "save":
            log.saved(*log.pending())
        else:
            log.append(f"k{step}", f'"{step}"')
        kept = {chunk.number: chunk for chunk in log.chunks}
        assert log.pending()[0] == {n: kept[n].json() for n in sorted(log.unsaved)
                                    if n in kept}
