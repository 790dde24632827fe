"""The store asset's URI rule and the URI handler the provider registers for ``omnisend://``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from airflow_omnisend.assets import normalize_uri, store_asset, store_asset_uri
from airflow_omnisend.get_provider_info import get_provider_info


def test_a_store_asset_is_named_by_its_uri() -> None:
    asset = store_asset("demo_1")
    assert asset.uri == asset.name == store_asset_uri("demo_1") == "omnisend://demo_1/orders"
    assert normalize_uri(urlsplit(asset.uri)) == urlsplit(asset.uri)


@pytest.mark.parametrize(
    "uri",
    ["omnisend://Demo/orders", "omnisend://demo/refunds", "omnisend://demo/orders?x=1", "omnisend:///orders"],
)
def test_the_handler_refuses_other_forms(uri: str) -> None:
    with pytest.raises(ValueError, match=r"omnisend://<store_id>/orders"):
        normalize_uri(urlsplit(uri))


def test_airflow_uses_the_registered_handler() -> None:
    (entry,) = get_provider_info()["asset-uris"]
    assert entry == {"schemes": ["omnisend"], "handler": "airflow_omnisend.assets.normalize_uri"}
    assert store_asset("demo").normalized_uri == "omnisend://demo/orders"
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match="is not of the form"):  # a misspelt asset fails at parse time
        Asset(uri="omnisend://demo/order")
