"""Which fills are a position's (trader/position_fills.py): its own orders' whatever their
time (the exchange's clock is not the host's), anybody else's inside its open window
widened by a clock slack, never another position of ours. Back-to-back trades on one
symbol keep their own fills."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.positions import make
from trader.domain import Fill, Side
from trader.position_fills import CLOCK_SLACK, fills_of, read_from

T0 = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fill(trade_id: str, client_id: str, side: Side, seconds: float,
         quantity: str = "0.5") -> Fill:
    return Fill(trade_id, "BTCUSDT", client_id, side, Decimal(quantity), Decimal("50000"),
                Decimal("1"), Decimal("0"), at(seconds))


def ids(fills: list[Fill]) -> list[str]:
    return [f.trade_id for f in fills]


def test_the_entry_fill_stamped_before_the_host_opened_it_is_its_own() -> None:
    """Host clock 300 ms ahead of Binance's: the entry fill's exchange time is before
    `opened_at`; it is the position's all the same (its own client id)."""
    position = make(key="aaa", opened_at=at(10))
    fills = [fill("entry", "tb-BTCUSDT-aaa-en1", Side.BUY, 9.7),
             fill("stop", "tb-BTCUSDT-aaa-sl1", Side.SELL, 30)]
    assert ids(fills_of(position, fills, at(30.5))) == ["entry", "stop"]
    assert read_from(position) == at(10) - CLOCK_SLACK


def test_a_liquidation_stamped_after_the_host_recorded_the_close_is_its_own() -> None:
    """Host clock 1.5 s behind Binance's: the exchange's autoclose fill is stamped after the
    close was recorded; inside the slack it is the position's (it says LIQUIDATION)."""
    position = make(key="aaa", opened_at=at(10))
    fills = [fill("entry", "tb-BTCUSDT-aaa-en1", Side.BUY, 11.5),
             fill("liq", "autoclose-1700000000000", Side.SELL, 31.4)]
    assert ids(fills_of(position, fills, at(30))) == ["entry", "liq"]


def test_back_to_back_trades_on_one_symbol_keep_their_own_fills() -> None:
    """A closed by hand at 20 s (exchange time), B opened 2 s later (host clock 300 ms
    ahead): the hand close is A's alone, B's entry and stop are B's alone."""
    a = make(key="aaa", opened_at=at(10))
    b = make(key="bbb", opened_at=at(22))
    fills = [fill("a-entry", "tb-BTCUSDT-aaa-en1", Side.BUY, 9.7),
             fill("a-hand", "web_Xy12", Side.SELL, 20),
             fill("b-entry", "tb-BTCUSDT-bbb-en1", Side.BUY, 21.7),
             fill("b-hand-add", "", Side.BUY, 25, "0.1"),
             fill("b-stop", "tb-BTCUSDT-bbb-sl1", Side.SELL, 40, "0.6")]
    assert ids(fills_of(a, fills, at(20.3))) == ["a-entry", "a-hand"]
    assert ids(fills_of(b, fills, at(40.2))) == ["b-entry", "b-hand-add", "b-stop"]
    assert ids(fills_of(b, fills)) == ["b-entry", "b-hand-add", "b-stop"]   # not closed yet


def test_nobody_elses_trade_after_a_whole_close_is_taken() -> None:
    """A closed whole by its stop; a trade by hand 2 s after the close (inside the slack)
    opens something else."""
    a = make(key="aaa", opened_at=at(10))
    fills = [fill("a-entry", "tb-BTCUSDT-aaa-en1", Side.BUY, 10.1),
             fill("a-stop", "tb-BTCUSDT-aaa-sl1", Side.SELL, 20),
             fill("hand", "", Side.SELL, 22)]
    assert ids(fills_of(a, fills, at(20.2))) == ["a-entry", "a-stop"]


def test_with_the_clocks_agreeing_the_window_is_as_before() -> None:
    """Skew 0: anybody else's fills between the opening and the close; other symbols and
    fills well outside the window are left out."""
    position = make(key="aaa", opened_at=at(600))
    fills = [fill("before", "", Side.SELL, 300), fill("entry", "", Side.BUY, 600),
             fill("close", "", Side.SELL, 1140), fill("after", "", Side.BUY, 1260),
             Fill("eth", "ETHUSDT", "", Side.SELL, Decimal("1"), Decimal("1"), Decimal("0"),
                  Decimal("0"), at(1000))]
    assert ids(fills_of(position, fills, at(1200))) == ["entry", "close"]


def test_the_read_starts_earlier_by_the_measured_offset_either_way() -> None:
    """Host clock 8 s ahead of Binance's (offset -8 s) or behind it (+8 s): the read of its
    fills starts 5 s plus 8 s before it opened; no offset measured: 5 s."""
    position = make(key="aaa", opened_at=at(20))
    for offset in (timedelta(seconds=-8), timedelta(seconds=8)):
        assert read_from(position, offset) == at(20) - CLOCK_SLACK - timedelta(seconds=8)
    assert read_from(position) == at(20) - CLOCK_SLACK


def test_anybodys_fill_is_taken_within_the_slack_widened_by_the_offset() -> None:
    """Host clock 8 s behind Binance's: an autoclose stamped 12 s after the close was
    recorded is its own with the offset known, not without it."""
    position = make(key="aaa", opened_at=at(10))
    fills = [fill("entry", "tb-BTCUSDT-aaa-en1", Side.BUY, 18),
             fill("liq", "autoclose-1700000000000", Side.SELL, 42)]
    assert ids(fills_of(position, fills, at(30), timedelta(seconds=8))) == ["entry", "liq"]
    assert ids(fills_of(position, fills, at(30))) == ["entry"]
