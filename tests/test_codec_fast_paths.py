"""The codec's per-type fast paths write exactly what the general rendering writes.

`dump` of a dataclass reads its fields in one call and keeps plain values without a call;
`fields` + `to_json` lets the JSON encoder render a record without copying it first. Both
must give the same stored text as the plain recursive definition (records written before
and after the change are read the same way, and the golden backtest stays identical)."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from storage import codec
from tests.positions import make
from trader.domain import Fill, Intent, IntentStatus, Order, OrderRole, OrderStatus, OrderType, Side
from trader.position import PositionState
from trader.position_journal import JOURNALED


def reference_dump(value: Any) -> Any:
    """The plain recursive rendering `dump` stands for (its definition before the fast path)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float):
        return value
    if dataclasses.is_dataclass(value):
        return {f.name: reference_dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): reference_dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference_dump(v) for v in value]
    raise TypeError(type(value).__name__)


finite = st.decimals(allow_nan=False, allow_infinity=False, places=8)
moments = st.datetimes(timezones=st.just(UTC))


@st.composite
def positions(draw: st.DrawFn) -> Any:
    state = draw(st.sampled_from(list(PositionState)))
    return make(side=draw(st.sampled_from(list(Side))), state=state,
                quantity=draw(finite.filter(lambda d: d > 0)), entry=draw(finite),
                stop=draw(finite), tp=draw(finite), key=draw(st.text(min_size=1, max_size=6)),
                opened_at=draw(moments))


intents = st.builds(Intent, symbol=st.text(max_size=8), client_id=st.text(max_size=12),
                    role=st.sampled_from(list(OrderRole)), side=st.sampled_from(list(Side)),
                    type=st.sampled_from(list(OrderType)), quantity=finite,
                    position_key=st.text(max_size=6), created_at=moments,
                    status=st.sampled_from(list(IntentStatus)),
                    price=st.none() | finite, trigger_price=st.none() | finite,
                    sent_at=st.none() | moments)
orders = st.builds(Order, symbol=st.text(max_size=8), client_id=st.text(max_size=12),
                   side=st.sampled_from(list(Side)), type=st.sampled_from(list(OrderType)),
                   status=st.sampled_from(list(OrderStatus)), quantity=finite,
                   filled_qty=finite, avg_price=finite, price=st.none() | finite,
                   updated_at=st.none() | moments)
fills = st.builds(Fill, symbol=st.text(max_size=8), trade_id=st.text(max_size=8),
                  client_id=st.text(max_size=12), side=st.sampled_from(list(Side)),
                  quantity=finite, price=finite, fee=finite, realized_pnl=finite, time=moments)
records = positions() | intents | orders | fills


@given(records)
def test_dump_of_a_record_is_the_plain_recursive_rendering(record: Any) -> None:
    assert codec.dump(record) == reference_dump(record)
    assert codec.dumps(record) == codec.dumps(reference_dump(record))


events = st.one_of(*(st.builds(kind, **{name: finite for name, hint in
                                        kind.__annotations__.items() if "Decimal" in str(hint)})
                     for kind in JOURNALED))


@given(events, st.text(max_size=6))
def test_a_journal_body_from_shallow_fields_is_the_text_of_the_dumped_one(event: Any,
                                                                         key: str) -> None:
    """PositionJournal.commit writes {"key", **fields(event)}: the text it wrote from
    {"key", **dump(event)} before."""
    assert codec.dumps({"key": key, **codec.fields(event)}) == \
        codec.dumps({"key": key, **codec.dump(event)})
