"""The paper exchange checks each fed candle for a price <= 0 once (it then walks it in
the simulator without the simulator checking it again); a refused one still goes to the
simulator's refusal (warning, nothing moves: tests/test_paper_realism.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from storage import Store
from trader.clock import ManualClock
from trader.domain import Candle
from trader.exchange import paper as paper_module
from trader.exchange import sim as sim_module
from trader.exchange.paper import PaperExchange
from trader.exchange.sim import SimConfig

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BTC = "BTCUSDT"


def test_a_sound_candle_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[Candle] = []
    original = sim_module.candle_problem

    def counted(candle: Candle) -> str | None:
        checks.append(candle)
        return original(candle)

    monkeypatch.setattr(paper_module, "candle_problem", counted)
    monkeypatch.setattr(sim_module, "candle_problem", counted, raising=True)
    paper = PaperExchange(Store.open(":memory:"), ManualClock(T0), SimConfig(),
                          persist_every=0, save_state=False)
    sound = Candle(BTC, T0, timedelta(minutes=5), D("100"), D("101"), D("99"), D("100.5"))
    assert paper.feed_candle(sound) == []
    assert checks == [sound]
    assert paper.sim.mark_price(BTC) == D("100.5")
