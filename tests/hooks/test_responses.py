"""Error typing, problem details and batch-item normalization (no network)."""

from __future__ import annotations

import pickle

import pytest

from airflow_omnisend.exceptions import (
    OmnisendAPIError,
    OmnisendAuthError,
    OmnisendNotFoundError,
    OmnisendPayloadTooLargeError,
    OmnisendRateLimitError,
    OmnisendServerError,
    OmnisendValidationError,
)
from airflow_omnisend.hooks._responses import (
    MAX_BODY_CHARS,
    BatchListing,
    api_error,
    counters_say_clean,
    item_succeeded,
    merge_batch_items,
    problem_from,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, OmnisendValidationError),
        (422, OmnisendValidationError),
        (401, OmnisendAuthError),
        (403, OmnisendAuthError),
        (404, OmnisendNotFoundError),
        (413, OmnisendPayloadTooLargeError),
        (429, OmnisendRateLimitError),
        (500, OmnisendServerError),
        (503, OmnisendServerError),
        (409, OmnisendAPIError),
    ],
)
def test_api_error_types(status: int, cls: type[OmnisendAPIError]) -> None:
    err = api_error(status, {"detail": "why"}, request="GET /v5/batches")
    assert type(err) is cls
    assert (err.status, err.problem, err.request) == (status, {"detail": "why"}, "GET /v5/batches")
    assert "GET /v5/batches" in str(err)
    assert "why" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.status, again.problem) == (cls, status, {"detail": "why"})


def test_problem_detail_parsing_and_scrubbing() -> None:
    body = b'{"status":400,"detail":"bad","errors":[{"field":"items[0].eventTime","message":"invalid"}]}'
    assert problem_from(body, "k")["errors"][0]["field"] == "items[0].eventTime"
    assert problem_from(b"<html>" + b"x" * 2000, None)["detail"].startswith("<html>")
    assert len(problem_from(b"x" * 5000, None)["detail"]) < MAX_BODY_CHARS + 40
    echoed = problem_from(b'{"detail":"your key SECRET123 is wrong"}', "SECRET123")
    assert echoed == {"detail": "your key *** is wrong"}
    assert problem_from(b"", "k") == {}


def test_merge_batch_items_from_responses_errors_and_items() -> None:
    body = {
        "batchID": "b1",
        "responses": [
            {"itemID": "i1", "status": "finished", "responseCode": 202, "request": {"eventID": "e1"}},
            {"itemID": "i4", "status": "finished", "request": {"eventID": "e4"}},
        ],
        "errors": [
            {
                "itemID": "i2",
                "status": "finished",
                "responseCode": "400",
                "request": {"eventID": "e2"},
                "response": {"detail": "bad eventTime"},
            }
        ],
        "items": [
            {"itemID": "i1", "status": "finished", "response": {"ok": True}},
            {"itemID": "i3", "status": "pending", "responseCode": None, "request": {"eventID": "e3"}},
            "not an item",
        ],
    }
    items = merge_batch_items(body)
    by_id = {i["itemID"]: i for i in items}
    assert sorted(by_id) == ["i1", "i2", "i3", "i4"]
    assert len(items) == 4
    for item in items:
        assert {"itemID", "status", "responseCode", "request", "response", "listedUnder"} <= item.keys()
    assert by_id["i1"]["listedUnder"] == "responses"
    assert by_id["i1"]["response"] == {"ok": True}  # filled in from the items list
    assert by_id["i2"]["responseCode"] == 400
    assert [item_succeeded(by_id[i]) for i in ("i1", "i2", "i3", "i4")] == [True, False, False, True]


def test_merge_batch_items_odd_shapes() -> None:
    assert merge_batch_items(None) == []
    assert merge_batch_items({"responses": None}) == []
    listed = merge_batch_items([{"itemID": 7, "responseCode": 200}, {"responseCode": 500}])
    assert [i["itemID"] for i in listed] == ["7", None]
    assert [item_succeeded(i) for i in listed] == [True, False]


CLEAN = {"status": "finished", "totalCount": 3, "finishedCount": 3, "errorsCount": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"status": "stopped"},
        {"errorsCount": 1},
        {"finishedCount": 2},
        {"totalCount": 4, "finishedCount": 4},
        {"errorsCount": None},
        {"totalCount": "3"},
        {"finishedCount": True},
    ],
)
def test_counters_prove_success_only_when_complete_and_consistent(change: dict[str, object]) -> None:
    assert counters_say_clean(CLEAN, 3)
    assert not counters_say_clean({**CLEAN, **change}, 3)
    assert not counters_say_clean({k: v for k, v in CLEAN.items() if k != "errorsCount"}, 3)


def test_listing_stops_once_every_wanted_batch_was_seen() -> None:
    listing = BatchListing(["b2", "b150"], page_size=100)
    first = {"batches": [{"batchID": f"b{i}"} for i in range(100)], "paging": {"next": "url"}}
    assert listing.add_page(first) is True
    assert listing.offset == 100
    assert set(listing.found) == {"b2"}
    second = {"batches": [{"batchID": f"b{i}"} for i in range(100, 200)], "paging": {"next": "url"}}
    assert listing.add_page(second) is False
    assert listing.missing == []
    assert listing.pages == 2


def test_listing_ends_on_the_last_page_and_names_the_missing() -> None:
    listing = BatchListing(["gone"], page_size=100)
    assert listing.add_page({"batches": [{"batchID": "x"}], "paging": {"next": None}}) is False
    assert listing.missing == ["gone"]
    without_paging = BatchListing(["gone"], page_size=2)
    assert without_paging.add_page({"batches": [{"batchID": "x"}, {"batchID": "y"}]}) is True
    assert without_paging.add_page({"batches": [{"batchID": "z"}]}) is False


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_names_the_connection_and_the_fix(status: int) -> None:
    error = api_error(status, {"detail": "nope"}, request="POST /v5/batches", conn_id="omnisend_b")
    assert isinstance(error, OmnisendAuthError)
    text = str(error)
    assert f"({status}) on POST /v5/batches" in text
    assert text.count("connection 'omnisend_b'") == 2  # what was refused, and where the fix goes
    assert "not retried" in text
    assert pickle.loads(pickle.dumps(error)).args == error.args
    assert "connection '" not in str(api_error(status, {}, request="GET /v5/batches"))  # no id given
