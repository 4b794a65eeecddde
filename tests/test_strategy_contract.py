"""A user's strategy that breaks the contract of trader/strategy/base.py is named, with the
field and what it must be, instead of a traceback from deep inside the engine:
- it cannot be loaded (a syntax error in its file, a class that needs arguments, a warmup
  that is no whole number): `StrategyLoadError`, which `tradebot` prints as one
  "config error" line, exit 2;
- its Signal has a field of the wrong kind (floats where the money rules need Decimal, a
  side that is a string, a negative stop or target): the strategy's answer is refused with
  a TypeError / ValueError naming the strategy and the field, which ends a backtest with one
  line (tests/test_backtest_strategy_errors.py) and is contained by the live tick."""

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_cli import XRP_DAY, backtest
from trader.domain import Side, Signal
from trader.entry import EntryDesk
from trader.strategy.base import StrategyLoadError, load_strategy

BROKEN = {
    "syntaxerr.py": "def x(:\n    pass\n",
    "needs_args.py": "class NeedsArgs:\n    name, warmup = 'n', 10\n"
                     "    def __init__(self, x):\n        self.x = x\n"
                     "    def signal(self, closed):\n        return None\n",
    "text_warmup.py": "class TextWarmup:\n    name, warmup = 't', '10'\n"
                      "    def signal(self, closed):\n        return None\n",
    "raises_on_import.py": "raise RuntimeError('no API key in the environment')\n",
}


@pytest.fixture
def strategies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "userstrats"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in BROKEN.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("userstrats")]:
        del sys.modules[module]


@pytest.mark.parametrize(("reference", "said"), [
    ("userstrats.syntaxerr:X", "syntaxerr.py, line 1"),
    ("userstrats.needs_args:NeedsArgs", "could not be created"),
    ("userstrats.text_warmup:TextWarmup", "warmup must be a whole number of candles"),
    ("userstrats.raises_on_import:X", "no API key in the environment"),
])
def test_a_strategy_that_cannot_be_loaded_is_named(strategies: Path, reference: str,
                                                   said: str) -> None:
    with pytest.raises(StrategyLoadError) as raised:
        load_strategy(reference)
    assert f"TRADEBOT_STRATEGY={reference}" in str(raised.value)
    assert said in str(raised.value)


def test_tradebot_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "userstrats").mkdir()
    (tmp_path / "userstrats" / "syntaxerr.py").write_text(BROKEN["syntaxerr.py"])
    result = backtest(tmp_path, "--symbols", "XRPUSDT", *XRP_DAY,
                      TRADEBOT_STRATEGY="userstrats.syntaxerr:X")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    [line] = [text for text in result.stderr.splitlines() if text.startswith("config error")]
    assert "TRADEBOT_STRATEGY=userstrats.syntaxerr:X" in line and "SyntaxError" in line, line


class Answers:
    name, warmup = "answers", 1     # more than the candles given: the higher timeframe is not asked

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def signal(self, closed: object) -> object:
        return self.answer


GOOD = Signal(Side.BUY, 0.5, tp_pct=Decimal("0.012"), sl_pct=Decimal("0.006"))


@pytest.mark.parametrize(("bad", "said"), [
    (Signal(Side.BUY, 0.5, tp_pct=0.012, sl_pct=Decimal("0.006")),     # type: ignore[arg-type]
     "tp_pct must be a Decimal"),
    (Signal(Side.BUY, 0.5, tp_pct=Decimal("0.012"), sl_pct=0.006),     # type: ignore[arg-type]
     "sl_pct must be a Decimal"),
    (Signal("BUY", 0.5, tp_pct=Decimal("0.012"), sl_pct=Decimal("0.006")),   # type: ignore[arg-type]
     "side must be Side.BUY or Side.SELL"),
    (Signal(Side.SELL, 0.5, tp_pct=Decimal("-0.012"), sl_pct=Decimal("0.006")),
     "tp_pct must be 0 or more"),
    (Signal(Side.SELL, 0.5, tp_pct=Decimal("0.012"), sl_pct=Decimal("NaN")),
     "sl_pct must be 0 or more"),
    (Signal(Side.BUY, "high", tp_pct=Decimal("0.012"), sl_pct=Decimal("0.006")),  # type: ignore[arg-type]
     "confidence must be a number"),
])
def test_a_signal_with_a_field_of_the_wrong_kind_is_refused_naming_it(bad: Signal,
                                                                      said: str) -> None:
    desk = EntryDesk(Answers(bad))
    with pytest.raises((TypeError, ValueError)) as raised:
        desk.signal([])
    assert "strategy 'answers'" in str(raised.value) and said in str(raised.value), raised.value


def test_a_well_formed_signal_passes_unchanged() -> None:
    assert EntryDesk(Answers(GOOD)).signal([]) is GOOD
    manual = Signal(Side.SELL, 1, tp_pct=Decimal(0), sl_pct=Decimal("0.01"))   # 0: the rule's
    assert EntryDesk(Answers(manual)).signal([]) is manual
