"""Order rows -> Omnisend events: every event kind, statuses as of each event, money, ids, contacts, dirt."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from airflow_omnisend.events.columns import order_tuple
from airflow_omnisend.events.ids import OMNISEND_EVENT_NAMESPACE, make_event_id
from airflow_omnisend.events.mapping import OrderEventMapper, map_order
from airflow_omnisend.events.names import CANCELED, FULFILLED, PAID, PLACED, REFUNDED
from airflow_omnisend.events.validation import EventValidator
from airflow_omnisend.exceptions import OmnisendConfigError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _order(**changes: object) -> dict[str, object]:
    order: dict[str, object] = {
        "order_id": "SO-1",
        "order_number": 1001,
        "customer_id": "C-77",
        "email": "  Jonas.Kazlauskas@Example.COM ",
        "phone": " +37060000001 ",
        "first_name": "Žydrūnas",
        "last_name": "王",
        "currency": "EUR",
        "subtotal_price": 39.98,
        "total_discount": 4.0,
        "total_tax": 6.25,
        "shipping_price": 2.99,
        "total_price": 38.97,
        "discount_code": "VASARA10",
        "payment_method": "card",
        "shipping_method": "DPD kurjeris",
        "note": "Prašome skambinti",
        "billing_address1": "Gedimino pr. 12",
        "billing_city": "Vilnius",
        "billing_zip": "LT-01103",
        "billing_country_code": "LT",
        "created_at": "2024-03-09T23:59:59-05:00",
        "paid_at": "2024-03-10T05:10:00Z",
        "fulfilled_at": "2024-03-11T10:00:00.250+02:00",
        "tracking_code": "LP123456789LT",
        "courier_title": "LP Express",
        "courier_url": "https://tracking.example/lp/LP123456789LT",
        "canceled_at": None,
        "cancel_reason": None,
    }
    order.update(changes)
    return order


LINES = [
    {
        "order_id": "SO-1",
        "line_number": 1,
        "product_id": "P1",
        "variant_id": "P1-V1",
        "sku": "SKU-1",
        "title": "Lininė staltiesė",
        "variant_title": "Lininė staltiesė - Žalia",
        "vendor": "Linas",
        "category_id": "C1",
        "category_title": "Namai",
        "quantity": 2,
        "unit_price": 19.99,
        "discount": 4.0,
        "product_url": "https://shop.example/p/P1",
        "image_url": "https://cdn.shop.example/P1.jpg",
    },
    {
        "order_id": "SO-1",
        "line_number": 2,
        "product_id": "P2",
        "variant_id": None,
        "sku": None,
        "title": "抹茶 tea set",
        "variant_title": None,
        "vendor": None,
        "category_id": None,
        "category_title": None,
        "quantity": 1,
        "unit_price": 0,
        "discount": 0,
        "product_url": None,
        "image_url": None,
    },
]


def _refund(
    refund_id: str, created_at: str, amount: object, lines: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "refund_id": refund_id,
        "order_id": "SO-1",
        "created_at": created_at,
        "amount": amount,
        "tax_amount": 1.5,
        "reason": "damaged",
        "lines": lines,
    }


def _by_name(events: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(e["eventName"]): e for e in events}


def test_every_order_event_kind_in_lifecycle_order() -> None:
    refunds = [
        _refund("R-1", "2024-03-12T08:00:00Z", 19.99, [{"line_number": 1, "quantity": 1, "amount": 19.99}])
    ]
    events = map_order(
        "shop_a", _order(canceled_at="2024-03-13T00:00:00Z", cancel_reason="late"), LINES, refunds
    )
    assert [e["eventName"] for e in events] == [PLACED, PAID, FULFILLED, REFUNDED, CANCELED]
    assert [e["eventTime"] for e in events] == [
        "2024-03-10T04:59:59Z",
        "2024-03-10T05:10:00Z",
        "2024-03-11T08:00:00.250Z",
        "2024-03-12T08:00:00Z",
        "2024-03-13T00:00:00Z",
    ]
    for event in events:
        assert event["eventVersion"] == "v2"
        assert event["origin"] == "api"
        assert list(event) == [
            "eventName",
            "eventID",
            "eventTime",
            "eventVersion",
            "origin",
            "contact",
            "properties",
        ]
        props = event["properties"]
        assert props["orderID"] == "SO-1"
        assert props["createdAt"] == "2024-03-10T04:59:59Z"
        assert props["orderNumber"] == 1001


def test_only_existing_lifecycle_steps_become_events() -> None:
    events = map_order("shop_a", _order(paid_at=None, fulfilled_at=None), LINES)
    assert [e["eventName"] for e in events] == [PLACED]


def test_shared_order_shape() -> None:
    placed = _by_name(map_order("shop_a", _order(), LINES))[PLACED]
    props = placed["properties"]
    assert props["currency"] == "EUR"
    assert props["totalPrice"] == 38.97
    assert props["subTotalPrice"] == 39.98
    assert props["totalDiscount"] == 4
    assert props["totalTax"] == 6.25
    assert props["shippingPrice"] == 2.99
    assert props["paymentMethod"] == "card"
    assert props["shippingMethod"] == "DPD kurjeris"
    assert props["note"] == "Prašome skambinti"
    assert props["discounts"] == [{"code": "VASARA10", "amount": 4}]
    assert props["billingAddress"] == {
        "address1": "Gedimino pr. 12",
        "city": "Vilnius",
        "zip": "LT-01103",
        "countryCode": "LT",
    }
    full, sparse = props["lineItems"]
    assert full == {
        "productID": "P1",
        "productVariantID": "P1-V1",
        "productSKU": "SKU-1",
        "productTitle": "Lininė staltiesė",
        "productVariantTitle": "Lininė staltiesė - Žalia",
        "productVendor": "Linas",
        "productPrice": 19.99,
        "productQuantity": 2,
        "productDiscount": 4,
        "productURL": "https://shop.example/p/P1",
        "productImageURL": "https://cdn.shop.example/P1.jpg",
        "productCategories": [{"id": "C1", "title": "Namai"}],
    }
    # null columns are left out, not sent as null
    assert sparse == {
        "productID": "P2",
        "productTitle": "抹茶 tea set",
        "productPrice": 0,
        "productQuantity": 1,
        "productDiscount": 0,
    }
    assert "tracking" not in props
    assert "cancelReason" not in props


def test_no_discount_code_no_address_no_discounts_key() -> None:
    order = _order(
        discount_code=None,
        billing_address1=None,
        billing_city=None,
        billing_zip=None,
        billing_country_code=None,
    )
    props = map_order("s", order, LINES)[0]["properties"]
    assert "discounts" not in props
    assert "billingAddress" not in props


def test_fulfilled_carries_tracking_and_canceled_its_reason() -> None:
    events = _by_name(
        map_order(
            "s", _order(canceled_at="2024-03-12T00:00:00Z", cancel_reason="Klientas persigalvojo"), LINES
        )
    )
    assert events[FULFILLED]["properties"]["tracking"] == {
        "code": "LP123456789LT",
        "courierTitle": "LP Express",
        "courierURL": "https://tracking.example/lp/LP123456789LT",
    }
    assert events[CANCELED]["properties"]["cancelReason"] == "Klientas persigalvojo"
    assert "tracking" not in events[PAID]["properties"]


def test_statuses_are_as_of_each_events_time() -> None:
    refunds = [
        _refund("R-1", "2024-03-12T08:00:00Z", 19.99, [{"line_number": 1, "quantity": 1, "amount": 19.99}]),
        _refund("R-2", "2024-03-14T08:00:00Z", 18.98, [{"line_number": 1, "quantity": 1, "amount": 18.98}]),
    ]
    events = map_order("s", _order(), LINES, refunds)
    statuses = [
        (e["eventName"], e["properties"]["paymentStatus"], e["properties"]["fulfillmentStatus"])
        for e in events
    ]
    assert statuses == [
        (PLACED, "awaitingPayment", "unfulfilled"),
        (PAID, "paid", "unfulfilled"),
        (FULFILLED, "paid", "fulfilled"),
        (REFUNDED, "partiallyRefunded", "fulfilled"),
        (REFUNDED, "refunded", "fulfilled"),  # 19.99 + 18.98 == 38.97 == totalPrice
    ]


def test_payment_status_of_a_canceled_order() -> None:
    unpaid = _by_name(
        map_order("s", _order(paid_at=None, fulfilled_at=None, canceled_at="2024-03-10T06:00:00Z"), LINES)
    )
    assert unpaid[CANCELED]["properties"]["paymentStatus"] == "voided"
    assert unpaid[PLACED]["properties"]["paymentStatus"] == "awaitingPayment"
    paid = _by_name(map_order("s", _order(fulfilled_at=None, canceled_at="2024-03-10T06:00:00Z"), LINES))
    assert paid[CANCELED]["properties"]["paymentStatus"] == "paid"  # until the refund comes


def test_times_at_the_same_instant_count_as_happened() -> None:
    # paid at the very instant of placement: the placed event already says paid
    events = _by_name(map_order("s", _order(paid_at="2024-03-10T04:59:59Z"), LINES))
    assert events[PLACED]["properties"]["paymentStatus"] == "paid"


def test_refunded_event_amounts_and_lines() -> None:
    refund = _refund(
        "R-1",
        "2024-03-12T08:00:00Z",
        "10.00",
        [
            {"line_number": 1, "quantity": 3, "amount": "10.00"},
            {"line_number": 9, "quantity": 1, "amount": 1},
        ],
    )
    event = _by_name(map_order("s", _order(), LINES, [refund]))[REFUNDED]
    props = event["properties"]
    assert props["totalRefundedAmount"] == 10
    assert props["totalRefundedTaxAmount"] == 1.5
    first, orphan = props["refundedLineItems"]
    assert first["productID"] == "P1"
    assert first["productQuantity"] == 3
    assert first["productPrice"] == 3.33  # 10.00 / 3, to the cent
    assert "productDiscount" not in first
    assert orphan == {"productPrice": 1, "productQuantity": 1}  # a refund line of no known order line
    assert props["lineItems"] == _by_name(map_order("s", _order(), LINES))[PLACED]["properties"]["lineItems"]


def test_event_ids_are_uuid5_deterministic_and_per_store() -> None:
    first = map_order("shop_a", _order(), LINES)
    again = map_order("shop_a", _order(), LINES)
    other_store = map_order("shop_b", _order(), LINES)
    assert [e["eventID"] for e in first] == [e["eventID"] for e in again]
    assert not {e["eventID"] for e in first} & {e["eventID"] for e in other_store}
    for event in first:
        expected = uuid.uuid5(OMNISEND_EVENT_NAMESPACE, f"shop_a:{event['eventName']}:SO-1")
        assert event["eventID"] == str(expected)
        assert uuid.UUID(event["eventID"]).version == 5
    assert len({e["eventID"] for e in first}) == len(first)


def test_refund_event_id_is_keyed_by_refund_id() -> None:
    refunds = [
        _refund("R-1", "2024-03-12T08:00:00Z", 1, []),
        _refund("R-2", "2024-03-12T08:00:00Z", 1, []),
    ]
    refunded = [e for e in map_order("shop_a", _order(), LINES, refunds) if e["eventName"] == REFUNDED]
    assert [e["eventID"] for e in refunded] == [
        make_event_id("shop_a", REFUNDED, "R-1"),
        make_event_id("shop_a", REFUNDED, "R-2"),
    ]


@pytest.mark.parametrize("bad", ["", "  ", "a:b", None])
def test_the_mapper_checks_the_store_id(bad: object) -> None:
    with pytest.raises(OmnisendConfigError):
        OrderEventMapper(bad)  # type: ignore[arg-type]


def test_contact_identifiers_and_customer_id() -> None:
    contact = map_order("s", _order(), LINES)[0]["contact"]
    assert contact == {
        "email": "jonas.kazlauskas@example.com",
        "phone": "+37060000001",
        "firstName": "Žydrūnas",
        "lastName": "王",
        "customProperties": {"shopCustomerID": "C-77"},
    }
    assert "id" not in contact


def test_customer_id_is_never_contact_id() -> None:
    for customer_id in ("5f1a2b3c4d5e6f7a8b9c0d1e", 42, "C-1"):  # even when it looks like an Omnisend id
        for event in map_order("s", _order(customer_id=customer_id, email=None), LINES):
            assert "id" not in event["contact"]
            assert event["contact"]["customProperties"] == {"shopCustomerID": str(customer_id)}


def test_guest_order_without_customer_id_has_no_custom_properties() -> None:
    contact = map_order("s", _order(customer_id=None), LINES)[0]["contact"]
    assert "customProperties" not in contact


def test_clean_events_pass_the_validator() -> None:
    refunds = [
        _refund("R-1", "2024-03-12T08:00:00Z", 19.99, [{"line_number": 1, "quantity": 1, "amount": 19.99}])
    ]
    validator = EventValidator(now=NOW)
    events = map_order("s", _order(canceled_at="2024-03-13T00:00:00Z", cancel_reason="late"), LINES, refunds)
    for event in events:
        verdict = validator.check(orjson.loads(orjson.dumps(event)))
        assert verdict.errors == [], event["eventName"]
        assert verdict.warnings == []


@pytest.mark.parametrize(
    ("changes", "line_changes", "code"),
    [
        ({"email": None, "phone": None}, {}, "contact_missing_identifier"),
        ({"email": "  ", "phone": ""}, {}, "contact_missing_identifier"),
        ({"currency": "EURO"}, {}, "currency_not_iso4217"),
        ({}, {"unit_price": -4.99}, "negative_money"),
        ({"total_price": "n/a"}, {}, "money_invalid"),
        ({}, {"quantity": 1.5}, "quantity"),
        ({"created_at": "2024-03-09 23:59:59"}, {}, "event_time_format"),
    ],
)
def test_dirty_rows_become_events_the_validator_rejects_naming_the_order(
    changes: dict[str, object], line_changes: dict[str, object], code: str
) -> None:
    lines = [{**LINES[0], **line_changes}]
    placed = _by_name(map_order("s", _order(**changes), lines))[PLACED]
    verdict = EventValidator(now=NOW).check(orjson.loads(orjson.dumps(placed)))
    assert code in {issue.code for issue in verdict.errors}, verdict.errors
    assert placed["properties"]["orderID"] == "SO-1"


def test_lower_case_currency_is_normalised() -> None:
    assert map_order("s", _order(currency=" eur "), LINES)[0]["properties"]["currency"] == "EUR"


def test_unreadable_times_are_passed_on_not_guessed() -> None:
    events = map_order(
        "s", _order(created_at="yesterday", paid_at="2024-03-10 05:10", fulfilled_at=None), LINES
    )
    placed, paid = _by_name(events)[PLACED], _by_name(events)[PAID]
    assert placed["eventTime"] == "yesterday"
    assert placed["properties"]["createdAt"] == "yesterday"
    assert paid["eventTime"] == "2024-03-10 05:10"
    # a paid_at that cannot be read counts as "not yet paid" for the statuses of other events
    assert placed["properties"]["paymentStatus"] == "awaitingPayment"


def test_missing_created_at_leaves_event_time_out() -> None:
    placed = map_order("s", _order(created_at=None, paid_at=None, fulfilled_at=None), LINES)[0]
    assert "eventTime" not in placed
    assert EventValidator(now=NOW).check(placed).errors


def test_refund_of_a_missing_order_still_names_the_order() -> None:
    mapper = OrderEventMapper("s")
    refund = ("R-9", "SO-404", "2024-03-12T08:00:00Z", 5, 0, None)
    event = mapper.refund_event(order_tuple({}), [], refund, [])
    assert event["properties"]["orderID"] == "SO-404"
    assert event["eventTime"] == "2024-03-12T08:00:00Z"
    assert event["contact"] == {}


def test_postgres_style_values() -> None:
    order = _order(
        created_at=datetime(2024, 3, 10, 4, 59, 59, 123000, tzinfo=UTC),
        paid_at=None,
        fulfilled_at=None,
        subtotal_price=Decimal("39.98"),
        total_price=Decimal("38.97"),
        total_discount=Decimal("4.00"),
    )
    placed = map_order("s", order, [{**LINES[0], "unit_price": Decimal("19.99"), "quantity": Decimal(2)}])[0]
    assert placed["eventTime"] == "2024-03-10T04:59:59.123Z"
    assert placed["properties"]["totalPrice"] == 38.97
    assert placed["properties"]["totalDiscount"] == 4
    assert placed["properties"]["lineItems"][0]["productPrice"] == 19.99
    assert placed["properties"]["lineItems"][0]["productQuantity"] == 2


def test_numeric_ids_become_strings() -> None:
    order = _order(order_id=77, order_number="1001", customer_id=5, billing_zip=1103)
    line = {**LINES[0], "product_id": 12, "variant_id": 12.0, "sku": 200, "category_id": 3}
    placed = map_order("s", order, [line])[0]
    props = placed["properties"]
    assert props["orderID"] == "77"
    assert props["orderNumber"] == 1001
    assert props["billingAddress"]["zip"] == "1103"
    item = props["lineItems"][0]
    assert (item["productID"], item["productVariantID"], item["productSKU"]) == ("12", "12", "200")
    assert item["productCategories"] == [{"id": "3", "title": "Namai"}]
    assert placed["eventID"] == make_event_id("s", PLACED, "77")
