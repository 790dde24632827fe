"""CollisionIndex: one eventID + eventTime on two different events is found; repeats are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_omnisend.events.collisions import COLLISION_CODE, CollisionIndex

T0 = datetime(2024, 3, 9, 12, tzinfo=UTC)


def test_a_different_event_with_the_same_id_and_time_collides_naming_the_first_line() -> None:
    index = CollisionIndex()
    assert index.check("a", T0, b'{"x":1}', 3) is None
    issue = index.check("a", T0, b'{"x":2}', 7)
    assert issue is not None
    assert issue.code == COLLISION_CODE
    assert issue.path == "eventID"
    assert "line 3" in issue.message


def test_an_exact_repeat_and_other_keys_do_not_collide() -> None:
    index = CollisionIndex()
    assert index.check("a", T0, b"same", 1) is None
    assert index.check("a", T0, b"same", 2) is None  # Omnisend de-duplicates a repeat
    assert index.check("a", T0 + timedelta(seconds=1), b"other", 3) is None  # another time: another key
    assert index.check("b", T0, b"other", 4) is None
    assert len(index) == 3


def test_the_same_instant_written_with_another_offset_is_the_same_key() -> None:
    index = CollisionIndex()
    assert index.check("a", T0, b"one", 1) is None
    shifted = T0.astimezone(datetime.fromisoformat("2024-03-09T14:00:00+02:00").tzinfo)
    assert index.check("a", shifted, b"two", 2) is not None


def test_the_table_grows_and_keeps_every_key() -> None:
    index = CollisionIndex(slots=16)
    for i in range(5000):
        assert index.check(f"id-{i}", T0, b"v%d" % i, i + 1) is None
    assert len(index) == 5000
    for i in range(0, 5000, 97):
        found = index.check(f"id-{i}", T0, b"changed", 9999)
        assert found is not None
        assert f"line {i + 1}" in found.message
