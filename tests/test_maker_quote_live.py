"""The maker quoter's "is an entry quote of this position live?" reads each live order's
client id once; its answer is the rule as first written: `o.role is ENTRY and
position.owns(o.client_id)` for some live order."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tests.positions import make
from trader.domain import ClientId, Order, OrderRole, OrderStatus, OrderType, Side
from trader.maker_quoter import _quote_live

SYMBOLS = ("BTCUSDT", "XRPUSDT")
KEYS = ("k1", "k2", "k10", "en1")


def _order(client_id: str) -> Order:
    return Order("BTCUSDT", client_id, Side.BUY, OrderType.LIMIT, OrderStatus.NEW,
                 Decimal("1"), price=Decimal("100"))


ours = st.builds(lambda symbol, key, role, seq: str(ClientId(symbol, key, role, seq)),
                 st.sampled_from(SYMBOLS), st.sampled_from(KEYS), st.sampled_from(list(OrderRole)),
                 st.integers(1, 3))
foreign = st.sampled_from(["web_abc", "autoclose-1", "manual-2", "tb-BTCUSDT-k1-en",
                           "tb-BTCUSDT-k1-xx1", "", "tb-BTCUSDT-k1-en01", "tb-BTCUSDT-k1-en+1",
                           "tb-BTCUSDT-k1-en1-x", "tb-BTCUSDT-k1-en 1"])
live_orders = st.lists(st.one_of(ours, foreign).map(_order), max_size=6)


@given(live_orders, st.sampled_from(SYMBOLS), st.sampled_from(KEYS))
def test_one_parse_answers_as_role_and_owns(live: list[Order], symbol: str, key: str) -> None:
    position = make(symbol=symbol, key=key)
    rule = any(o.role is OrderRole.ENTRY and position.owns(o.client_id) for o in live)
    assert _quote_live(position, live) is rule


def test_only_an_entry_of_this_very_position_counts() -> None:
    position = make(symbol="BTCUSDT", key="k1")
    entry = str(ClientId("BTCUSDT", "k1", OrderRole.ENTRY, 2))
    assert _quote_live(position, [_order(entry)])
    for other in (ClientId("BTCUSDT", "k2", OrderRole.ENTRY, 2),      # another position
                  ClientId("XRPUSDT", "k1", OrderRole.ENTRY, 2),      # another symbol
                  ClientId("BTCUSDT", "k1", OrderRole.STOP_LOSS, 1)):  # its stop, not a quote
        assert not _quote_live(position, [_order(str(other))])
    assert not _quote_live(position, [])


def test_an_id_with_the_entry_prefix_still_has_to_parse() -> None:
    """The "-en" test only skips ids that cannot be an entry's: one that holds it but is
    not the exact text the agent makes, another key's entry, or the stop of a key that
    starts with "en" is no quote of this position. Fails with the parse dropped after the
    "-en" test."""
    position = make(symbol="BTCUSDT", key="k1")
    for text in ("tb-BTCUSDT-k1-en01", "tb-BTCUSDT-k1-en+1", "tb-BTCUSDT-k1-en1-x",
                 "tb-BTCUSDT-k1-en", str(ClientId("BTCUSDT", "k10", OrderRole.ENTRY, 1))):
        assert not _quote_live(position, [_order(text)]), text
    keyed_en = make(symbol="BTCUSDT", key="en1")
    assert not _quote_live(keyed_en, [_order(str(ClientId("BTCUSDT", "en1",
                                                          OrderRole.STOP_LOSS, 1)))])
    assert _quote_live(keyed_en, [_order(str(ClientId("BTCUSDT", "en1", OrderRole.ENTRY, 1)))])
    found = [_order(str(ClientId("BTCUSDT", "k1", OrderRole.STOP_LOSS, 1))),
             _order(str(ClientId("BTCUSDT", "k1", OrderRole.ENTRY, 12)))]
    assert _quote_live(position, found)
