"""The pure parts of the send state machine: body parsing, item matching, verdicts, dead-letter lines."""

from __future__ import annotations

import orjson
import pytest

from airflow_omnisend.events.body_format import decode_body, encode_body
from airflow_omnisend.exceptions import OmnisendInputError
from airflow_omnisend.operators._shard_sender import (
    SendStats,
    body_event_keys,
    dead_letter_line,
    item_reason,
    judge,
)

TRICKY = [
    b'{"eventID":"a","eventTime":"2024-01-01T00:00:00Z","note":"a, b], {c}","x":[{"y":[1,2]},{}]}',
    '{"eventID":"b","eventTime":"2024-01-01T00:00:01Z","t":"\\u00e9t\\u00e9 \\"q\\" é ✓"}'.encode(),
    b'{"eventID":"c","eventTime":"2024-01-01T00:00:02Z","n":-1.5e3,"z":null,"e":{}}',
]


def test_body_lines_are_the_exact_item_bytes() -> None:
    body = encode_body(TRICKY)
    assert decode_body(body) == TRICKY
    assert body_event_keys(body) == [
        ("a", "2024-01-01T00:00:00Z"),
        ("b", "2024-01-01T00:00:01Z"),
        ("c", "2024-01-01T00:00:02Z"),
    ]
    assert encode_body(decode_body(body)) == body
    with pytest.raises(OmnisendInputError):
        decode_body(b'{"items":[]}')
    with pytest.raises(OmnisendInputError):
        body_event_keys(b"not json")


def _item(
    event_id: str | None, code: int | None, listed: str = "errors", **extra: object
) -> dict[str, object]:
    request = None if event_id is None else {"eventID": event_id, "eventTime": f"t{event_id}"}
    return {
        "itemID": f"i{event_id}",
        "responseCode": code,
        "request": request,
        "listedUnder": listed,
        **extra,
    }


def test_verdicts_match_items_by_event_id_and_time() -> None:
    keys = [("a", "ta"), ("b", "tb"), ("c", "tc"), ("d", "td"), ("e", "te"), ("a", "ta")]
    problem = {"detail": "event has 1 error(s)", "errors": [{"field": "eventTime", "message": "bad"}]}
    items = [
        _item("a", 202, "responses"),
        _item("b", 400, response=problem),
        _item("c", 503),
        _item("d", None, "responses"),  # listed under responses: succeeded
        _item("a", 429),  # the second copy of "a" in the body
        _item("zz", 202, "responses"),  # not in the body: ignored
    ]
    verdicts = judge(keys, items, "finished", "batch1")
    assert [v.kind for v in verdicts] == ["accepted", "dead", "retry", "accepted", "retry", "retry"]
    assert verdicts[1].code == 400
    assert "eventTime: bad" in verdicts[1].reason
    assert "event has 1 error(s)" in verdicts[1].reason
    assert "no result" in verdicts[4].reason  # "e" has no item in a finished batch
    assert verdicts[5].code == 429


def test_events_missing_from_a_stopped_batch_are_retried() -> None:
    verdicts = judge([("a", "ta"), ("b", "tb")], [_item("a", 202, "responses")], "stopped", "b7")
    assert [v.kind for v in verdicts] == ["accepted", "retry"]
    assert "stopped batch b7" in verdicts[1].reason


def test_items_without_an_echo_are_matched_by_position_only_when_counts_agree() -> None:
    keys = [("a", "ta"), ("b", "tb")]
    bare = [_item(None, 202, "responses"), _item(None, 500)]
    assert [v.kind for v in judge(keys, bare, "finished", "b")] == ["accepted", "retry"]
    assert [v.kind for v in judge(keys, bare[:1], "finished", "b")] == ["retry", "retry"]


def test_item_reason_reads_both_problem_shapes() -> None:
    v5 = {"responseCode": 400, "response": {"error": "1 error(s)", "fields": {"0": ["phone: too long"]}}}
    assert "1 error(s)" in item_reason(v5)
    assert "phone: too long" in item_reason(v5)
    assert "no responseCode" in item_reason({"response": "oops"})


def test_dead_letter_lines_are_json_with_the_event_verbatim() -> None:
    line = dead_letter_line(TRICKY[1], 'said "no"', 400, "b1", 2)
    assert line.endswith(b"\n")
    data = orjson.loads(line)
    assert data == {
        "event": orjson.loads(TRICKY[1]),
        "reason": 'said "no"',
        "response_code": 400,
        "batch_id": "b1",
        "stage": "send",
        "round": 2,
    }
    assert TRICKY[1] in line
    assert orjson.loads(dead_letter_line(TRICKY[0], "r", None, None, 0))["batch_id"] is None


def test_stats_round_trip_through_defer_kwargs() -> None:
    stats = SendStats(bodies_skipped=1, batches_submitted=2, events_sent=3, requests=4)
    assert SendStats.from_dict(stats.to_dict()) == stats
    assert SendStats.from_dict(None) == SendStats()
