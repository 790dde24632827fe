"""Every schema rule, with events that pass and events that break it (reason code and JSON path).

Each case also checks that the compiled screen and jsonschema agree on the schema verdict.
"""

# ruff: noqa: E501 - the case tables read best one case per line

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_omnisend.events.explanations import issue_from as _issue_from
from airflow_omnisend.events.schema import EVENT_NAMES, reference_validator, registry_reference_validator
from airflow_omnisend.events.validation import EventValidator

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DELETE = object()


def line_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "productID": "p-17",
        "productVariantID": "v-17-3",
        "productSKU": "TSHIRT-GRN-M",
        "productTitle": "Linen T-shirt",
        "productVariantTitle": "Green / M",
        "productVendor": "Audinys",
        "productPrice": 24.99,
        "productQuantity": 2,
        "productDiscount": 2.5,
        "productURL": "https://shop.example/p/17",
        "productImageURL": "https://shop.example/p/17.jpg",
        "productCategories": [{"id": "c-3", "title": "Shirts"}],
    }
    item.update(overrides)
    return item


def make_event(name: str = "placed order") -> dict[str, Any]:
    """A complete event of one kind, as the mapping writes it."""
    props: dict[str, Any] = {
        "orderID": "10042",
        "orderNumber": 10042,
        "currency": "EUR",
        "totalPrice": 52.47,
        "subTotalPrice": 44.98,
        "totalDiscount": 5.0,
        "totalTax": 7.8,
        "shippingPrice": 4.99,
        "paymentMethod": "card",
        "shippingMethod": "DPD pickup point",
        "note": "Please ring twice",
        "paymentStatus": "paid",
        "fulfillmentStatus": "unfulfilled",
        "createdAt": "2025-03-01T09:15:00Z",
        "discounts": [{"code": "SPRING5", "amount": 5.0}],
        "billingAddress": {
            "address1": "Gedimino pr. 1",
            "city": "Vilnius",
            "zip": "01103",
            "countryCode": "LT",
        },
        "lineItems": [line_item(), line_item(productID="p-2", productSKU=200, productQuantity=1)],
    }
    if name == "order fulfilled":
        props["fulfillmentStatus"] = "fulfilled"
        props["tracking"] = {
            "code": "LT123",
            "courierTitle": "DPD",
            "courierURL": "https://dpd.example/LT123",
        }
    elif name == "order canceled":
        props["cancelReason"] = "customer changed their mind"
        props["paymentStatus"] = "voided"
    elif name == "order refunded":
        props["paymentStatus"] = "partiallyRefunded"
        props["totalRefundedAmount"] = 24.99
        props["totalRefundedTaxAmount"] = 4.34
        props["refundedLineItems"] = [line_item(productQuantity=1)]
    return {
        "eventName": name,
        "eventID": "0b4c2c55-7a0e-5d8c-9b3e-5f3c1c8c2a11",
        "eventTime": "2025-03-01T09:15:00.250Z",
        "eventVersion": "v2",
        "origin": "api",
        "contact": {
            "email": "ona@example.lt",
            "phone": "+37060012345",
            "firstName": "Ona",
            "lastName": "Žukė",
        },
        "properties": props,
    }


def mutate(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of ``event`` with the value at dotted ``path`` (list indexes as numbers) replaced or deleted."""
    out = copy.deepcopy(event)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return out


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(now=NOW)


def _assert_engines_agree(validator: EventValidator, event: dict[str, Any]) -> None:
    assert validator.screen_is_valid(event) == (validator.explain(event) == [])
    name = event.get("eventName")
    if (
        name in EVENT_NAMES
    ):  # explain() (inlined schema, valid items blanked) == jsonschema on the shipped one
        inlined = reference_validator(name).iter_errors(event)
        shipped = list(registry_reference_validator(name).iter_errors(event))
        assert [(e.message, e.json_path) for e in inlined] == [(e.message, e.json_path) for e in shipped]
        assert validator.explain(event) == [_issue_from(e) for e in shipped]


# -- events that pass ----------------------------------------------------------------------------------

# fmt: off
VALID: list[tuple[str, str, str, Any]] = [
    # (id, event name, path, value)
    ("order-number-int", "placed order", "properties.orderNumber", 7),
    ("order-number-string", "placed order", "properties.orderNumber", "A-10042"),
    ("sku-number", "placed order", "properties.lineItems.0.productSKU", 200),
    ("sku-float", "placed order", "properties.lineItems.0.productSKU", 200.5),
    ("money-zero", "placed order", "properties.totalDiscount", 0),
    ("money-int", "placed order", "properties.totalPrice", 52),
    ("money-huge", "placed order", "properties.totalPrice", 1e15),
    ("quantity-one", "placed order", "properties.lineItems.0.productQuantity", 1),
    ("quantity-huge", "placed order", "properties.lineItems.0.productQuantity", 10**20),
    # JSON Schema's data model: 2.0 *is* an integer, in both engines
    ("quantity-2.0", "placed order", "properties.lineItems.0.productQuantity", 2.0),
    ("time-no-fraction", "placed order", "eventTime", "2025-03-01T09:15:00Z"),
    ("time-1-digit", "placed order", "eventTime", "2025-03-01T09:15:00.2Z"),
    ("time-6-digits", "placed order", "eventTime", "2025-03-01T09:15:00.123456Z"),
    ("time-plus-offset", "placed order", "eventTime", "2025-03-01T11:15:00+02:00"),
    ("time-minus-offset", "placed order", "eventTime", "2025-03-01T04:45:00-05:30"),
    ("time-leap-day", "placed order", "eventTime", "2024-02-29T12:00:00Z"),
    # the other forms of Omnisend's 2026-03-15 events contract (sent as the canonical UTC string)
    ("time-space", "placed order", "eventTime", "2025-03-01 09:15:00Z"),
    ("time-space-offset", "placed order", "eventTime", "2025-03-01 11:15:00+02:00"),
    ("time-7-digits", "placed order", "eventTime", "2025-03-01T09:15:00.1234567Z"),
    ("time-lower-t-z", "placed order", "eventTime", "2025-03-01t09:15:00z"),
    ("time-short-offset", "placed order", "eventTime", "2025-03-01T11:15:00+0200"),
    ("time-hour-offset", "placed order", "eventTime", "2025-03-01T11:15:00+02"),
    ("time-exactly-now", "placed order", "eventTime", "2026-01-01T00:00:00Z"),
    ("time-now-other-offset", "placed order", "eventTime", "2026-01-01T02:00:00+02:00"),
    ("event-id-upper", "placed order", "eventID", "0B4C2C55-7A0E-5D8C-9B3E-5F3C1C8C2A11"),
    ("contact-phone-only", "placed order", "contact", {"phone": "+37060012345"}),
    ("contact-id-only", "placed order", "contact", {"id": "67447b7d5c1cd54488ec24d9"}),
    ("contact-email-only", "placed order", "contact", {"email": "O'Brien+shop@mail.example.co.uk"}),
    ("contact-first-name-50", "placed order", "contact.firstName", "x" * 50),
    ("contact-first-name-50-astral", "placed order", "contact.firstName", "😀" * 50),
    ("contact-address-500", "placed order", "contact.address", "a" * 500),
    ("contact-country-code-3", "placed order", "contact.countryCode", "LTU"),
    ("contact-postal-code-20", "placed order", "contact.postalCode", "1" * 20),
    ("contact-tags-100", "placed order", "contact.tags", ["t"] * 100),
    ("contact-custom-properties", "placed order", "contact.customProperties", {"shopCustomerID": 9}),
    ("contact-phone-15", "placed order", "contact.phone", "+12345678901234"),
    ("currency-historic-hrk", "placed order", "properties.currency", "HRK"),
    ("currency-new-xcg", "placed order", "properties.currency", "XCG"),
    ("extra-property-key", "placed order", "properties.loyaltyPoints", {"earned": 12}),
    ("extra-line-item-key", "placed order", "properties.lineItems.0.productColor", "green"),
    ("no-line-items", "paid for order", "properties.lineItems", DELETE),
    ("only-required-props", "order fulfilled", "properties", {"orderID": "1", "currency": "USD"}),
    ("cancel-reason-missing", "order canceled", "properties.cancelReason", DELETE),
    ("unicode-everywhere", "placed order", "properties.note", "Ąčę 東京 \u0000 🚚"),
    ("sub-total-tax-included", "placed order", "properties.subTotalTaxIncluded", True),
]
# fmt: on


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_complete_event_of_each_kind_is_valid_with_no_warning(validator: EventValidator, name: str) -> None:
    event = make_event(name)
    verdict = validator.check(event)
    assert verdict.errors == []
    assert verdict.warnings == []
    assert verdict.ok
    assert validator.screen_is_valid(event)


@pytest.mark.parametrize(("name", "path", "value"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_variants(validator: EventValidator, name: str, path: str, value: Any) -> None:
    event = mutate(make_event(name), path, value)
    assert validator.check(event).errors == []
    assert validator.screen_is_valid(event)
    assert validator.explain(event) == []


# -- events that break a rule --------------------------------------------------------------------------

# fmt: off
INVALID: list[tuple[str, str, str, Any, str, str]] = [
    # (id, event name, path, value, expected code, expected error path)
    ("name-unknown", "placed order", "eventName", "placed orders", "unknown_event_name", "eventName"),
    ("name-british", "placed order", "eventName", "order cancelled", "unknown_event_name", "eventName"),
    ("name-missing", "placed order", "eventName", DELETE, "unknown_event_name", "eventName"),
    ("name-not-string", "placed order", "eventName", ["placed order"], "unknown_event_name", "eventName"),
    ("top-level-unknown-key", "placed order", "customerID", 5, "unknown_top_level_key", "$"),
    ("id-missing", "placed order", "eventID", DELETE, "event_id_missing", "eventID"),
    ("id-short", "placed order", "eventID", "0b4c2c55-7a0e", "event_id_invalid", "eventID"),
    ("id-braces", "placed order", "eventID", "{0b4c2c55-7a0e-5d8c-9b3e-5f3c1c8c2a11}", "event_id_invalid", "eventID"),
    ("id-no-dashes", "placed order", "eventID", "0b4c2c557a0e5d8c9b3e5f3c1c8c2a11", "event_id_invalid", "eventID"),
    ("id-newline", "placed order", "eventID", "0b4c2c55-7a0e-5d8c-9b3e-5f3c1c8c2a11\n", "event_id_invalid", "eventID"),
    ("id-int", "placed order", "eventID", 12345, "event_id_invalid", "eventID"),
    ("version-missing", "placed order", "eventVersion", DELETE, "event_version_missing", "eventVersion"),
    ("version-v1", "placed order", "eventVersion", "v1", "event_version_invalid", "eventVersion"),
    ("version-upper", "placed order", "eventVersion", "V2", "event_version_invalid", "eventVersion"),
    ("origin-missing", "paid for order", "origin", DELETE, "origin_missing", "origin"),
    ("origin-other", "paid for order", "origin", "shopify", "origin_invalid", "origin"),
    ("time-missing", "placed order", "eventTime", DELETE, "event_time_missing", "eventTime"),
    ("time-no-offset", "placed order", "eventTime", "2025-03-01T09:15:00", "event_time_format", "eventTime"),
    ("time-date-only", "placed order", "eventTime", "2025-03-01", "event_time_format", "eventTime"),
    ("time-space-no-offset", "placed order", "eventTime", "2025-03-01 09:15:00", "event_time_format", "eventTime"),
    ("time-no-seconds", "placed order", "eventTime", "2025-03-01T09:15Z", "event_time_format", "eventTime"),
    ("time-offset-3-digits", "placed order", "eventTime", "2025-03-01T09:15:00+020", "event_time_format", "eventTime"),
    ("time-offset-15h", "placed order", "eventTime", "2025-03-01T09:15:00+1500", "event_time_invalid", "eventTime"),
    ("time-epoch", "placed order", "eventTime", 1740820500, "event_time_format", "eventTime"),
    ("time-newline", "placed order", "eventTime", "2025-03-01T09:15:00Z\n", "event_time_format", "eventTime"),
    ("time-unicode-digits", "placed order", "eventTime", "٢٠٢٥-03-01T09:15:00Z", "event_time_format", "eventTime"),
    ("time-month-13", "placed order", "eventTime", "2025-13-01T09:15:00Z", "event_time_invalid", "eventTime"),
    ("time-feb-30", "placed order", "eventTime", "2024-02-30T09:15:00Z", "event_time_invalid", "eventTime"),
    ("time-feb-29-2023", "placed order", "eventTime", "2023-02-29T09:15:00Z", "event_time_invalid", "eventTime"),
    ("time-hour-24", "placed order", "eventTime", "2025-03-01T24:00:00Z", "event_time_invalid", "eventTime"),
    ("time-second-60", "placed order", "eventTime", "2025-03-01T09:15:60Z", "event_time_invalid", "eventTime"),
    ("time-offset-min-60", "placed order", "eventTime", "2025-03-01T09:15:00+01:60", "event_time_invalid", "eventTime"),
    ("time-offset-24h", "placed order", "eventTime", "2025-03-01T09:15:00+24:00", "event_time_invalid", "eventTime"),
    ("time-year-0", "placed order", "eventTime", "0000-03-01T09:15:00Z", "event_time_invalid", "eventTime"),
    ("time-future", "placed order", "eventTime", "2026-01-01T00:00:00.000001Z", "event_time_future", "eventTime"),
    ("time-future-offset", "placed order", "eventTime", "2025-12-31T23:30:00-01:00", "event_time_future", "eventTime"),
    ("contact-missing", "placed order", "contact", DELETE, "contact_missing", "contact"),
    ("contact-string", "placed order", "contact", "ona@example.lt", "contact_invalid", "contact"),
    ("contact-empty", "placed order", "contact", {}, "contact_missing_identifier", "contact"),
    ("contact-name-only", "placed order", "contact", {"firstName": "Ona"}, "contact_missing_identifier", "contact"),
    ("contact-customer-id", "placed order", "contact.customerID", "c-9", "contact_unknown_field", "contact"),
    ("email-plain", "placed order", "contact.email", "not-an-email", "contact_email_invalid", "contact.email"),
    ("email-no-dot", "placed order", "contact.email", "ona@localhost", "contact_email_invalid", "contact.email"),
    ("email-empty", "placed order", "contact.email", "", "contact_email_invalid", "contact.email"),
    ("email-unicode", "placed order", "contact.email", "ona@pavyzdys.lt\u00a0", "contact_email_invalid", "contact.email"),
    ("email-space", "placed order", "contact.email", "ona @example.lt", "contact_email_invalid", "contact.email"),
    ("email-newline", "placed order", "contact.email", "ona@example.lt\n", "contact_email_invalid", "contact.email"),
    ("email-number", "placed order", "contact.email", 5, "contact_email_invalid", "contact.email"),
    ("email-too-long", "placed order", "contact.email", "a" * 250 + "@x.lt", "contact_email_invalid", "contact.email"),
    ("phone-no-plus", "placed order", "contact.phone", "37060012345", "contact_phone_invalid", "contact.phone"),
    ("phone-leading-0", "placed order", "contact.phone", "+07060012345", "contact_phone_invalid", "contact.phone"),
    ("phone-spaces", "placed order", "contact.phone", "+370 600 12345", "contact_phone_invalid", "contact.phone"),
    ("phone-16-chars", "placed order", "contact.phone", "+123456789012345", "contact_field_too_long", "contact.phone"),
    ("id-short-hex", "placed order", "contact.id", "67447b7d5c1cd5", "contact_id_invalid", "contact.id"),
    ("id-not-hex", "placed order", "contact.id", "67447b7d5c1cd54488ec24zz", "contact_id_invalid", "contact.id"),
    ("id-shop-number", "placed order", "contact.id", 9, "contact_id_invalid", "contact.id"),
    ("first-name-51", "placed order", "contact.firstName", "x" * 51, "contact_field_too_long", "contact.firstName"),
    ("first-name-51-astral", "placed order", "contact.firstName", "😀" * 51, "contact_field_too_long", "contact.firstName"),
    ("last-name-51", "placed order", "contact.lastName", "Ž" * 51, "contact_field_too_long", "contact.lastName"),
    ("address-501", "placed order", "contact.address", "a" * 501, "contact_field_too_long", "contact.address"),
    ("city-101", "placed order", "contact.city", "a" * 101, "contact_field_too_long", "contact.city"),
    ("state-101", "placed order", "contact.state", "a" * 101, "contact_field_too_long", "contact.state"),
    ("country-101", "placed order", "contact.country", "a" * 101, "contact_field_too_long", "contact.country"),
    ("country-code-4", "placed order", "contact.countryCode", "LTUA", "contact_field_too_long", "contact.countryCode"),
    ("postal-code-21", "placed order", "contact.postalCode", "1" * 21, "contact_field_too_long", "contact.postalCode"),
    ("tags-101", "placed order", "contact.tags", ["t"] * 101, "contact_field_too_long", "contact.tags"),
    ("tags-not-strings", "placed order", "contact.tags", [1], "contact_field_invalid", "contact.tags[0]"),
    ("gender", "placed order", "contact.gender", "x", "contact_field_invalid", "contact.gender"),
    ("birthdate", "placed order", "contact.birthdate", "1990/01/01", "contact_field_invalid", "contact.birthdate"),
    ("first-name-null", "placed order", "contact.firstName", None, "contact_field_invalid", "contact.firstName"),
    ("properties-missing", "placed order", "properties", DELETE, "properties_missing", "properties"),
    ("properties-list", "placed order", "properties", [], "properties_invalid", "properties"),
    ("order-id-missing", "placed order", "properties.orderID", DELETE, "order_id_missing", "properties.orderID"),
    ("order-id-int", "placed order", "properties.orderID", 10042, "order_id_invalid", "properties.orderID"),
    ("order-id-empty", "placed order", "properties.orderID", "", "order_id_invalid", "properties.orderID"),
    ("order-number-float", "placed order", "properties.orderNumber", 1.5, "order_number_invalid", "properties.orderNumber"),
    ("order-number-bool", "placed order", "properties.orderNumber", True, "order_number_invalid", "properties.orderNumber"),
    ("currency-missing", "placed order", "properties.currency", DELETE, "currency_missing", "properties.currency"),
    ("currency-lower", "placed order", "properties.currency", "eur", "currency_not_iso4217", "properties.currency"),
    ("currency-word", "placed order", "properties.currency", "EURO", "currency_not_iso4217", "properties.currency"),
    ("currency-made-up", "placed order", "properties.currency", "XYZ", "currency_not_iso4217", "properties.currency"),
    ("currency-numeric", "placed order", "properties.currency", 978, "currency_not_iso4217", "properties.currency"),
    ("currency-symbol", "placed order", "properties.currency", "€", "currency_not_iso4217", "properties.currency"),
    ("total-negative", "placed order", "properties.totalPrice", -0.01, "negative_money", "properties.totalPrice"),
    ("subtotal-negative", "paid for order", "properties.subTotalPrice", -1, "negative_money", "properties.subTotalPrice"),
    ("discount-negative", "placed order", "properties.totalDiscount", -5, "negative_money", "properties.totalDiscount"),
    ("tax-negative", "placed order", "properties.totalTax", -0.5, "negative_money", "properties.totalTax"),
    ("shipping-negative", "placed order", "properties.shippingPrice", -4.99, "negative_money", "properties.shippingPrice"),
    ("price-negative", "placed order", "properties.lineItems.1.productPrice", -24.99, "negative_money", "properties.lineItems[1].productPrice"),
    ("line-discount-negative", "placed order", "properties.lineItems.0.productDiscount", -1, "negative_money", "properties.lineItems[0].productDiscount"),
    ("code-discount-negative", "placed order", "properties.discounts.0.amount", -5, "negative_money", "properties.discounts[0].amount"),
    ("refund-negative", "order refunded", "properties.totalRefundedAmount", -1, "negative_money", "properties.totalRefundedAmount"),
    ("refund-tax-negative", "order refunded", "properties.totalRefundedTaxAmount", -1, "negative_money", "properties.totalRefundedTaxAmount"),
    ("refunded-line-negative", "order refunded", "properties.refundedLineItems.0.productPrice", -1, "negative_money", "properties.refundedLineItems[0].productPrice"),
    ("money-string", "placed order", "properties.totalPrice", "52.47", "money_invalid", "properties.totalPrice"),
    ("money-bool", "placed order", "properties.totalPrice", True, "money_invalid", "properties.totalPrice"),
    ("money-null", "placed order", "properties.totalPrice", None, "money_invalid", "properties.totalPrice"),
    ("quantity-zero", "placed order", "properties.lineItems.0.productQuantity", 0, "quantity", "properties.lineItems[0].productQuantity"),
    ("quantity-negative", "placed order", "properties.lineItems.0.productQuantity", -1, "quantity", "properties.lineItems[0].productQuantity"),
    ("quantity-fraction", "placed order", "properties.lineItems.0.productQuantity", 2.5, "quantity", "properties.lineItems[0].productQuantity"),
    ("quantity-string", "placed order", "properties.lineItems.0.productQuantity", "2", "quantity", "properties.lineItems[0].productQuantity"),
    ("quantity-bool", "placed order", "properties.lineItems.0.productQuantity", True, "quantity", "properties.lineItems[0].productQuantity"),
    ("refunded-quantity-zero", "order refunded", "properties.refundedLineItems.0.productQuantity", 0, "quantity", "properties.refundedLineItems[0].productQuantity"),
    ("payment-status", "placed order", "properties.paymentStatus", "PAID", "status_invalid", "properties.paymentStatus"),
    ("fulfillment-status", "placed order", "properties.fulfillmentStatus", "shipped", "status_invalid", "properties.fulfillmentStatus"),
    ("line-items-object", "placed order", "properties.lineItems", {"0": {}}, "line_item_invalid", "properties.lineItems"),
    ("line-item-string", "placed order", "properties.lineItems.0", "sku-1", "line_item_invalid", "properties.lineItems[0]"),
    ("sku-bool", "placed order", "properties.lineItems.0.productSKU", True, "line_item_invalid", "properties.lineItems[0].productSKU"),
    ("product-id-int", "placed order", "properties.lineItems.0.productID", 17, "line_item_invalid", "properties.lineItems[0].productID"),
    ("category-id-int", "placed order", "properties.lineItems.0.productCategories.0.id", 3, "line_item_invalid", "properties.lineItems[0].productCategories[0].id"),
    ("address-city-int", "placed order", "properties.billingAddress.city", 5, "address_invalid", "properties.billingAddress.city"),
    ("shipping-address-list", "placed order", "properties.shippingAddress", [], "address_invalid", "properties.shippingAddress"),
    ("discount-code-int", "placed order", "properties.discounts.0.code", 5, "discount_invalid", "properties.discounts[0].code"),
    ("tracking-code-int", "order fulfilled", "properties.tracking.code", 5, "tracking_invalid", "properties.tracking.code"),
    ("cancel-reason-int", "order canceled", "properties.cancelReason", 5, "order_field_invalid", "properties.cancelReason"),
    ("note-int", "placed order", "properties.note", 5, "order_field_invalid", "properties.note"),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "path", "value", "code", "error_path"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_variants(
    validator: EventValidator, name: str, path: str, value: Any, code: str, error_path: str
) -> None:
    event = mutate(make_event(name), path, value)
    verdict = validator.check(event)
    assert not verdict.ok
    assert (error_path, code) in [(e.path, e.code) for e in verdict.errors], verdict.errors
    for error in verdict.errors:
        assert error.message
        assert len(error.message) <= 300
    _assert_engines_agree(validator, event)


def test_rules_cover_every_reason_code_the_schema_names(validator: EventValidator) -> None:
    """Each x-code in the shipped schemas is exercised by at least one invalid case above."""
    from airflow_omnisend.events.schema import schema_documents

    named: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "x-code":
                    named.add(value)
                elif key == "x-codes":
                    for v in value.values():
                        named.update(v.values() if isinstance(v, dict) else [v])
                else:
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for doc in schema_documents().values():
        collect(doc)
    tested = {c[4] for c in INVALID}
    # not_an_object is a top-level type error: check() answers it before any schema work
    assert named - tested <= {"not_an_object"}, named - tested


def test_a_broken_event_reports_every_problem_at_once(validator: EventValidator) -> None:
    event = make_event()
    event["properties"]["currency"] = "eur"
    event["properties"]["lineItems"][0]["productQuantity"] = 0
    event["properties"]["lineItems"][1]["productPrice"] = -3
    event["contact"] = {"firstName": "x" * 51}
    event["eventTime"] = "2025-02-30T00:00:00Z"
    codes = sorted(e.code for e in validator.check(event).errors)
    assert codes == [
        "contact_field_too_long",
        "contact_missing_identifier",
        "currency_not_iso4217",
        "event_time_invalid",
        "negative_money",
        "quantity",
    ]


def test_keys_that_are_not_identifiers_are_quoted_in_paths(validator: EventValidator) -> None:
    event = make_event()
    event["contact"]["e-mail"] = "x"
    event["properties"]["lineItems"][0]["productQuantity"] = -1
    paths = {e.path for e in validator.check(event).errors}
    assert paths == {"contact", "properties.lineItems[0].productQuantity"}
    from airflow_omnisend.events.explanations import render_path

    assert render_path(["properties", "a.b", 0, "x y"]) == 'properties["a.b"][0]["x y"]'
    assert render_path([]) == "$"
