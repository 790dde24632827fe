"""The select_events step of a store importing a subset of the event names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import pytest

from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators.select_events import OmnisendSelectEventsOperator
from airflow_omnisend.staging import StagingRoot

if TYPE_CHECKING:
    from pathlib import Path


def test_keeps_only_the_stores_event_names(tmp_path: Path) -> None:
    partition = StagingRoot(str(tmp_path)).partition("shop", "2024-03-10")
    lines = [
        orjson.dumps({"eventName": "placed order", "eventID": "a"}),
        orjson.dumps({"eventName": "paid for order", "eventID": "b"}),
        b"",
        b"not json at all",  # not ours to judge: validation rejects it with a reason
        orjson.dumps({"eventName": "order refunded", "eventID": "c"}),
        orjson.dumps({"eventID": "d"}),  # no name: validation rejects it
    ]
    partition.write_bytes(partition.events, b"\n".join(lines))  # last line without a newline
    op = OmnisendSelectEventsOperator(
        task_id="select_events",
        store_id="shop",
        partition="2024-03-10",
        staging=str(tmp_path),
        event_names=("placed order", "order refunded"),
    )
    url = op.execute({})  # type: ignore[arg-type]
    assert url.endswith("shop/2024-03-10/events_selected.ndjson")
    kept = (tmp_path / "shop" / "2024-03-10" / "events_selected.ndjson").read_bytes().splitlines()
    assert kept == [lines[0], lines[3], lines[4], lines[5]]


@pytest.mark.parametrize("names", [(), ("order shipped",)])
def test_refuses_names_that_are_not_omnisend_order_events(names: tuple[str, ...]) -> None:
    with pytest.raises(OmnisendConfigError, match="non-empty subset"):
        OmnisendSelectEventsOperator(task_id="s", store_id="x", partition="2024-03-10", event_names=names)


def test_reads_the_events_the_extract_manifest_names(tmp_path: Path) -> None:
    """In the DAG the step reads extract's returned manifest: its folder, even under another root."""
    written = StagingRoot(str(tmp_path / "written")).partition("shop", "2024-03-10")
    placed = orjson.dumps({"eventName": "placed order", "eventID": "a"})
    written.write_bytes(written.events, placed + b"\n" + orjson.dumps({"eventName": "paid for order"}))
    manifest = written.manifest(files={"events": "events"}).to_dict()
    op = OmnisendSelectEventsOperator(
        task_id="select_events",
        store_id="shop",
        partition="2024-03-10",
        staging=str(tmp_path / "elsewhere"),
        event_names=("placed order",),
        extracted=manifest,
    )
    url = op.execute({})  # type: ignore[arg-type]
    assert url == str(written.dir / "events_selected.ndjson")
    assert (tmp_path / "written/shop/2024-03-10/events_selected.ndjson").read_bytes() == placed + b"\n"
    assert not (tmp_path / "elsewhere").exists()
