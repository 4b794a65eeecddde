"""`has_intents_before` (the intent cleanup's first question, every 30 minutes of engine
time) compares the oldest creation time as stored, ISO text, with `before`'s text. For a UTC
`before` and a stored text that is a UTC time's own `isoformat()` it compares the two times
instead, without writing `before`'s text (~10,700 instructions): the same answer, since such
texts order as their times do. Another zone (texts and times may order differently there)
or another spelling is still compared as text."""

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from trader.domain import Intent, IntentStatus, OrderRole, OrderType, Side
from trader.intent_records import _utc_time_of
from trader.trade_store import TradeStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def intent(created_at: datetime, number: int = 1) -> Intent:
    return Intent(client_id=f"tb-BTCUSDT-k1-sl{number}", symbol="BTCUSDT",
                  role=OrderRole.STOP_LOSS, side=Side.SELL, type=OrderType.STOP_MARKET,
                  quantity=Decimal("0.1"), position_key="k1", created_at=created_at,
                  status=IntentStatus.FILLED, trigger_price=Decimal("49500"),
                  reduce_only=True)


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


@settings(max_examples=100, deadline=None)
@given(st.lists(moments, min_size=1, max_size=4), moments,
       st.sampled_from([UTC, PLUS_TWO]), st.sampled_from([UTC, PLUS_TWO]))
def test_the_answer_is_the_stored_texts_order(created: list[datetime], before: datetime,
                                               created_zone: timezone,
                                               before_zone: timezone) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = TradeStore.open(Path(folder) / "t.db")
        texts = []
        for number, moment in enumerate(created, start=1):
            at = moment.replace(tzinfo=created_zone)
            store.save_intent(intent(at, number), at)
            texts.append(at.isoformat())
        asked = before.replace(tzinfo=before_zone)
        for _ in range(2):          # parsed once, then kept
            assert store.has_intents_before(asked) == (min(texts) < asked.isoformat())
        store.close()


def test_another_zone_is_compared_as_text_where_text_and_time_disagree(
        tmp_path: Path) -> None:
    """The negative case: 11:00 UTC written in +02:00 ("13:00:00+02:00") is earlier than
    the 12:00 UTC intent, yet its text sorts after: the stored text's order answers."""
    store = TradeStore.open(tmp_path / "t.db")
    store.save_intent(intent(T0), T0)
    before = datetime(2026, 1, 5, 13, 0, tzinfo=PLUS_TWO)
    assert before < T0 and T0.isoformat() < before.isoformat()
    assert store.has_intents_before(before) is True
    assert store.has_intents_before(T0) is False
    assert store.has_intents_before(T0 + timedelta(microseconds=1)) is True
    store.close()


def test_only_a_utc_time_s_own_text_is_read_as_a_time() -> None:
    assert _utc_time_of(T0.isoformat()) == T0
    assert _utc_time_of("2026-01-05T12:00:00.500000+00:00") == T0 + timedelta(
        milliseconds=500)
    assert _utc_time_of("2026-01-05 12:00:00+00:00") is None       # another spelling
    assert _utc_time_of("2026-01-05T14:00:00+02:00") is None       # another zone
    assert _utc_time_of("2026-01-05T12:00:00") is None             # no zone
    assert _utc_time_of("~") is None                                # no intent


class Untold(datetime):
    """A time whose text must not be written (the shortcut's whole point)."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        raise AssertionError("before's ISO text was written")


def test_a_utc_before_is_answered_without_writing_its_text(tmp_path: Path) -> None:
    store = TradeStore.open(tmp_path / "t.db")
    assert store.has_intents_before(Untold(2026, 1, 5, 13, tzinfo=UTC)) is False  # none yet
    store.save_intent(intent(T0), T0)
    assert store.has_intents_before(Untold(2026, 1, 5, 13, tzinfo=UTC)) is True
    assert store.has_intents_before(Untold(2026, 1, 5, 12, tzinfo=UTC)) is False
    store.close()
