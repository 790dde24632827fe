"""eventIDs: UUIDv5 over the store, the event name and the source key; the store-id rule."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_omnisend.events.ids import (
    MAX_STORE_ID_LENGTH,
    OMNISEND_EVENT_NAMESPACE,
    EventIdFactory,
    check_store_id,
    make_event_id,
)
from airflow_omnisend.events.names import EVENT_NAMES, PLACED, REFUNDED
from airflow_omnisend.exceptions import OmnisendConfigError


def test_the_namespace_never_changes() -> None:
    assert str(OMNISEND_EVENT_NAMESPACE) == "6f1c2b8e-3d4a-5e9f-8a7b-0c1d2e3f4a5b"
    assert make_event_id("demo", PLACED, "SO-1") == str(
        uuid.uuid5(OMNISEND_EVENT_NAMESPACE, "demo:placed order:SO-1")
    )


@pytest.mark.parametrize("key", ["SO-1", "", "Žalgiris/ąčęėįšųūž", "注文-42", 12345, "a:b:c"])
def test_fast_id_factory_equals_uuid5(key: object) -> None:
    for name in (PLACED, REFUNDED):
        assert EventIdFactory("shop_a", name)(key) == make_event_id("shop_a", name, key)


@given(
    st.from_regex(r"[a-z0-9_]{1,20}", fullmatch=True),
    st.sampled_from(EVENT_NAMES),
    st.one_of(st.text(), st.integers()),
)
def test_the_factory_is_make_event_id(store_id: str, name: str, key: object) -> None:
    made = EventIdFactory(store_id, name)(key)
    assert made == make_event_id(store_id, name, key)
    assert uuid.UUID(made).version == 5


@pytest.mark.parametrize("bad", ["", "  ", "a:b", None, "Shop", "shop-eu", "a" * (MAX_STORE_ID_LENGTH + 1)])
def test_store_id_is_checked(bad: object) -> None:
    with pytest.raises(OmnisendConfigError, match="store_id"):
        check_store_id(bad)
    with pytest.raises(OmnisendConfigError):
        EventIdFactory(bad, PLACED)  # type: ignore[arg-type]


def test_the_message_names_the_purpose_and_a_usable_id() -> None:
    with pytest.raises(OmnisendConfigError, match=r"cannot name a staging folder: .* e\.g\. 'shop_eu'"):
        check_store_id("Shop-EU", purpose="name a staging folder")


@pytest.mark.parametrize("good", ["demo", "acme_eu", "0", "a" * MAX_STORE_ID_LENGTH])
def test_good_store_ids_pass_unchanged(good: str) -> None:
    assert check_store_id(good) == good
