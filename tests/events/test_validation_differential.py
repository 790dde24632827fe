"""Differential property test: the compiled screen and jsonschema give the same verdict on every event.

The screen (jsonschema_rs) decides which events jsonschema never sees, so any disagreement would let a
bad event through unexplained, or reject a good one without a reason. Hypothesis generates valid events
of all five kinds and breaks them: every rule's typical mistakes, random JSON values at random places,
deleted and added keys, unicode, huge and fractional numbers, booleans where numbers go, trailing
newlines (Python's ``$`` matches before one, Rust's does not).
"""

from __future__ import annotations

import copy
import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_omnisend.events.explanations import issue_from
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.events.schema import registry_reference_validator, schema_documents
from airflow_omnisend.events.validation import EventValidator

VALIDATOR = EventValidator(now=datetime(2100, 1, 1, tzinfo=UTC))
DEFS = schema_documents()["defs.json"]["$defs"]
CURRENCIES: list[str] = DEFS["currency"]["enum"]
EMAIL_RE = DEFS["email"]["pattern"]
PHONE_RE = DEFS["phone"]["pattern"]
CONTACT_ID_RE = DEFS["contactID"]["pattern"]
EVENT_TIME_RE = DEFS["eventTime"]["pattern"]
UUID_RE = DEFS["uuid"]["pattern"]

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def assert_same_verdict(event: Any) -> None:
    screen = VALIDATOR.screen_is_valid(event)
    explained = VALIDATOR.explain(event)
    assert screen == (explained == []), (screen, explained, event)
    for issue in explained:
        assert issue.path
        assert issue.message
        assert issue.code
    # explain() uses the $ref-inlined schema on the event with its valid line items blanked (speed):
    # plain jsonschema on the shipped schema and the untouched event must say exactly the same
    if isinstance(event, dict) and event.get("eventName") in EVENT_NAMES:
        shipped = registry_reference_validator(event["eventName"]).iter_errors(event)
        assert [issue_from(e) for e in shipped] == explained


# -- valid events --------------------------------------------------------------------------------------

texts = st.text(max_size=12)
money = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**6).map(lambda cents: cents / 100),
    st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False),
)
UTC_INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@st.composite
def event_times(draw: st.DrawFn) -> str:
    instant = draw(UTC_INSTANTS)
    offset_minutes = draw(st.sampled_from([0, 0, 60, 120, -300, -330, 345, 840, -720]))
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    digits = draw(st.integers(min_value=0, max_value=6))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    if offset_minutes == 0 and draw(st.booleans()):
        return text + "Z"
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


# Built once: a strategy made inside a composite is rebuilt (and its regex re-parsed) on every draw.
EMAILS = st.from_regex(EMAIL_RE, fullmatch=True).filter(lambda s: len(s) <= 254)
PHONES = st.from_regex(r"^[+][1-9][0-9]{1,13}$", fullmatch=True)  # E.164 within Omnisend's 15 characters
CONTACT_IDS = st.from_regex(CONTACT_ID_RE, fullmatch=True)
IDENTIFIERS = st.sampled_from([{"email"}, {"phone"}, {"id"}, {"email", "phone"}, {"email", "phone", "id"}])
CONTACT_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "firstName": st.text(max_size=50),
        "lastName": st.text(max_size=50),
        "city": st.text(max_size=100),
        "countryCode": st.text(max_size=3),
        "postalCode": st.text(max_size=20),
        "tags": st.lists(texts, max_size=3),
        "customProperties": st.fixed_dictionaries({"shopCustomerID": st.integers() | texts}),
    },
)


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    contact: dict[str, Any] = {}
    identifiers = draw(IDENTIFIERS)
    if "email" in identifiers:
        contact["email"] = draw(EMAILS)
    if "phone" in identifiers:
        contact["phone"] = draw(PHONES)
    if "id" in identifiers:
        contact["id"] = draw(CONTACT_IDS)
    contact.update(draw(CONTACT_EXTRAS))
    return contact


LINE_ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "productID": texts,
        "productVariantID": texts,
        "productSKU": st.one_of(texts, st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
        "productTitle": texts,
        "productPrice": money,
        "productDiscount": money,
        "productQuantity": st.integers(min_value=1, max_value=10**20) | st.sampled_from([1.0, 2.0, 1e3]),
        "productURL": texts,
        "productCategories": st.lists(st.fixed_dictionaries({"id": texts, "title": texts}), max_size=2),
        "productTags": st.lists(texts, max_size=2),
    },
)

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 2.0, 2.5, 1e308, -1e308, 5e-324, 10**19, 2**64, -(2**63) - 1]),
    st.text(max_size=40),
    st.sampled_from(["", "\n", "x\n", " ", "\u0000", "😀" * 51, "Ž" * 101, "١٢٣"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)

STATUS = DEFS["orderProperties"]["properties"]
ORDER_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "orderNumber": st.integers(min_value=-(10**20), max_value=10**20) | texts,
    "totalPrice": money,
    "subTotalPrice": money,
    "totalDiscount": money,
    "totalTax": money,
    "shippingPrice": money,
    "paymentMethod": texts,
    "paymentStatus": st.sampled_from(STATUS["paymentStatus"]["enum"]),
    "fulfillmentStatus": st.sampled_from(STATUS["fulfillmentStatus"]["enum"]),
    "createdAt": event_times(),
    "note": texts,
    "discounts": st.lists(st.fixed_dictionaries({"code": texts, "amount": money}), max_size=2),
    "billingAddress": st.fixed_dictionaries({"address1": texts, "city": texts, "zip": texts}),
    "lineItems": st.lists(LINE_ITEMS, max_size=4),
    "loyalty": JSON_VALUES,  # properties allows keys of its own
}
EXTRA_OPTIONAL: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "placed order": {},
    "paid for order": {},
    "order fulfilled": {"tracking": st.fixed_dictionaries({"code": texts, "courierTitle": texts})},
    "order canceled": {"cancelReason": texts},
    "order refunded": {
        "totalRefundedAmount": money,
        "totalRefundedTaxAmount": money,
        "refundedLineItems": st.lists(LINE_ITEMS, max_size=2),
    },
}
ORDER_PROPERTIES = {
    name: st.fixed_dictionaries(
        {"orderID": st.text(min_size=1, max_size=12), "currency": st.sampled_from(CURRENCIES)},
        optional={**ORDER_OPTIONAL, **extra},
    )
    for name, extra in EXTRA_OPTIONAL.items()
}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(EVENT_NAMES))
    event_id = str(draw(st.uuids()))
    return {
        "eventName": name,
        "eventID": event_id.upper() if draw(st.booleans()) else event_id,
        "eventTime": draw(event_times()),
        "eventVersion": "v2",
        "origin": "api",
        "contact": draw(contacts()),
        "properties": draw(ORDER_PROPERTIES[name]),
    }


@settings(SETTINGS, max_examples=600)
@given(valid_events())
def test_generated_valid_events_pass_both_validators(event: dict[str, Any]) -> None:
    assert VALIDATOR.screen_is_valid(event)
    assert VALIDATOR.explain(event) == []
    # the same event read back from a file (orjson turns integers beyond 64 bits into floats)
    assert VALIDATOR.screen_is_valid(orjson.loads(json.dumps(event)))


# -- broken events -------------------------------------------------------------------------------------


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out.extend(all_paths(value, (*prefix, key)))
    return out


def parent_of(event: Any, path: tuple[Any, ...]) -> Any:
    node = event
    for key in path[:-1]:
        node = node[key]
    return node


def near_miss_strings(pattern: str) -> st.SearchStrategy[str]:
    """Strings that match, or almost match, an anchored pattern."""
    base = st.from_regex(pattern, fullmatch=True)
    return st.one_of(
        base,
        base.map(lambda s: s + "\n"),
        base.map(lambda s: " " + s),
        base.map(lambda s: s[:-1]),
        base.map(lambda s: s.swapcase()),
        base.map(lambda s: s + "٠"),
        st.tuples(base, st.sampled_from(string.printable + "é٣\u00a0")).map(
            lambda t: t[0][:3] + t[1] + t[0][3:]
        ),
    )


TIME_MISTAKES = st.one_of(
    near_miss_strings(EVENT_TIME_RE),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"  # 'T' or a space,
        r"(\.[0-9]{0,8})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?",  # up to 8 digits, any or no offset
        fullmatch=True,
    ),
)
NUMBER_MISTAKES = st.sampled_from(
    [0, -0.0, -1, -0.01, 1, 2.0, 2.5, True, False, None, "2", 10**30, -(10**30), 1e308, -1e308]
)

TARGETED: dict[str, st.SearchStrategy[Any]] = {
    "eventName": st.sampled_from([*EVENT_NAMES, "order cancelled", "Placed Order", "placed order "]),
    "eventID": near_miss_strings(UUID_RE),
    "eventTime": TIME_MISTAKES,
    "eventVersion": st.sampled_from(["v2", "v1", "V2", "v2\n", 2, None]),
    "origin": st.sampled_from(["api", "API", "shopify", "api\n", None]),
    "email": near_miss_strings(EMAIL_RE),
    "phone": near_miss_strings(PHONE_RE),
    "id": near_miss_strings(CONTACT_ID_RE),
    "currency": st.one_of(
        st.sampled_from(CURRENCIES).map(str.lower),
        st.from_regex("[A-Z]{3}", fullmatch=True),
        st.just("EUR\n"),
    ),
    "productQuantity": NUMBER_MISTAKES,
    "orderNumber": NUMBER_MISTAKES,
    "productSKU": NUMBER_MISTAKES,
    "firstName": st.text(min_size=45, max_size=55),
    "lastName": st.text(min_size=45, max_size=55),
    "postalCode": st.text(min_size=18, max_size=22),
    "countryCode": st.text(min_size=2, max_size=4),
    "tags": st.integers(min_value=98, max_value=102).map(lambda n: ["t"] * n),
}
for _money_key in (
    "totalPrice", "subTotalPrice", "totalDiscount", "totalTax", "shippingPrice", "productPrice",
    "productDiscount", "amount", "totalRefundedAmount", "totalRefundedTaxAmount",
):  # fmt: skip
    TARGETED[_money_key] = NUMBER_MISTAKES


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    event: Any = copy.deepcopy(draw(valid_events()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = all_paths(event)
        kind = draw(st.sampled_from(["targeted", "targeted", "replace", "delete", "add", "retype_root"]))
        if kind == "retype_root":
            if draw(st.integers(0, 9)) == 0:
                event = draw(JSON_VALUES)
            continue
        if not isinstance(event, dict) or not paths:
            continue
        if kind == "add":
            containers = [p for p in [(), *paths] if isinstance(parent_of(event, (*p, None)), dict)]
            where = draw(st.sampled_from(containers))
            node = parent_of(event, (*where, None))
            node[draw(st.text(max_size=12) | st.sampled_from(sorted(TARGETED)))] = draw(JSON_VALUES)
            continue
        if kind == "targeted":
            candidates = [p for p in paths if isinstance(p[-1], str) and p[-1] in TARGETED]
            if candidates:
                path = draw(st.sampled_from(candidates))
                parent_of(event, path)[path[-1]] = draw(TARGETED[path[-1]])
                continue
        path = draw(st.sampled_from(paths))
        parent = parent_of(event, path)
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return event


@settings(SETTINGS, max_examples=2000)
@given(broken_events())
def test_screen_and_jsonschema_agree_on_broken_events(event: Any) -> None:
    assert_same_verdict(event)


@settings(SETTINGS, max_examples=300)
@given(JSON_VALUES, st.sampled_from(EVENT_NAMES))
def test_screen_and_jsonschema_agree_on_random_json(value: Any, name: str) -> None:
    assert_same_verdict(value)
    if isinstance(value, dict):
        value["eventName"] = name
        assert_same_verdict(value)


def test_known_engine_pitfalls_agree() -> None:
    """The cases where Python re / jsonschema and Rust regex / jsonschema-rs could differ."""
    base = {
        "eventName": "placed order",
        "eventID": "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {"email": "customer@example.com"},
        "properties": {"orderID": "1", "currency": "EUR", "lineItems": [{"productQuantity": 1}]},
    }
    pitfalls: list[tuple[tuple[Any, ...], Any, bool]] = [
        (("eventTime",), "2024-01-01T00:00:00Z\n", False),  # '$' before a final newline in Python only
        (("contact", "email"), "customer@example.com\n", False),
        (("eventID",), "f1eeb5bd-736c-42c7-9cfe-6990f7f59b35\n", False),
        (("eventTime",), "２０２４-01-01T00:00:00Z", False),  # full-width digits: [0-9] is ASCII in both
        (("properties", "lineItems", 0, "productQuantity"), 2.0, True),  # 2.0 is an integer in JSON Schema
        (("properties", "lineItems", 0, "productQuantity"), 2.5, False),
        (("properties", "lineItems", 0, "productQuantity"), True, False),  # true is not an integer
        (("properties", "lineItems", 0, "productQuantity"), 10**30, True),  # beyond 64 bits
        (("properties", "lineItems", 0, "productQuantity"), 1e300, True),
        (("properties", "totalPrice"), -0.0, True),
        (("properties", "totalPrice"), False, False),
        (("properties", "orderNumber"), 2**64, True),
        (("contact", "firstName"), "😀" * 50, True),  # maxLength counts code points in both
        (("contact", "firstName"), "e\u0301" * 25, True),
        (("contact", "firstName"), "e\u0301" * 26, False),
    ]
    for path, value, expected in pitfalls:
        event = copy.deepcopy(base)
        parent_of(event, path)[path[-1]] = value
        assert VALIDATOR.screen_is_valid(event) is expected, (path, value)
        assert (VALIDATOR.explain(event) == []) is expected, (path, value)
