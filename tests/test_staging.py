"""Staging: partition layout, validation with fixes, atomic writes, roots from the
environment, file:// and remote (in-memory fsspec) roots, local copies, XCom manifests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError
from airflow_omnisend.staging import (
    STAGING_ENV,
    PartitionStaging,
    StagingManifest,
    StagingRoot,
    utc_timestamp,
)

BODY = "ab" * 32


def write_then_die(staging: PartitionStaging, path: ObjectStoragePath) -> None:
    with staging.open_write(path) as out:
        out.write(b'{"version": 2, "trunc')
        raise RuntimeError("worker died")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------------------------------
# layout


def test_layout_of_a_partition(tmp_path: Path, staging: PartitionStaging) -> None:
    base = f"file://{tmp_path}/stage/shop_1/2026-03-01"
    assert str(staging.dir) == base
    expected = {
        "events": "events.ndjson",
        "rows_rejected": "rows_rejected.ndjson",
        "valid": "valid.ndjson",
        "rejected": "rejected.ndjson",
        "validation": "validation.json",
        "plan": "plan.json",
        "report": "report.json",
    }
    for name, file in expected.items():
        assert str(getattr(staging, name)) == f"{base}/{file}"
        assert str(staging.file(name)) == f"{base}/{file}"
    assert str(staging.shard(0)) == f"{base}/bodies/shard-00000.ndjson"
    assert str(staging.shard(12)) == f"{base}/bodies/shard-00012.ndjson"
    assert str(staging.receipt_path(BODY)) == f"{base}/receipts/{BODY}.json"
    assert str(staging.dead_letters("plan")) == f"{base}/dead_letters/plan.ndjson"
    assert str(staging.dead_letters(3)) == f"{base}/dead_letters/shard-00003.ndjson"
    assert staging.relative(staging.shard(1)) == "bodies/shard-00001.ndjson"
    assert staging.resolve("bodies/shard-00001.ndjson") == staging.shard(1)
    assert staging.is_local
    assert PartitionStaging(staging.root, "shop_1", date(2026, 3, 1)) == staging
    assert not staging.dir.exists()  # building paths touches no storage


@pytest.mark.parametrize(
    ("store_id", "fix"),
    [("Shop-1", "'shop_1'"), ("my store", "'my_store'"), ("", "'my_store'"), ("shop/../x", "'shop_x'")],
)
def test_store_id_is_validated_with_a_suggestion(tmp_path: Path, store_id: str, fix: str) -> None:
    with pytest.raises(
        OmnisendConfigError, match=f"store_id {store_id!r} cannot name a staging folder"
    ) as info:
        PartitionStaging(str(tmp_path), store_id, "2026-03-01")
    assert "lowercase letters, digits and underscores" in str(info.value)
    assert fix in str(info.value)


@pytest.mark.parametrize("day", ["2026-3-1", "2026-02-30", "01.03.2026", "2026-03-01T00:00:00", 20260301])
def test_day_is_validated(tmp_path: Path, day: Any) -> None:
    with pytest.raises(
        OmnisendConfigError, match=r"not a calendar day in YYYY-MM-DD form; pass e\.g\. '2026-03-01'"
    ):
        PartitionStaging(str(tmp_path), "shop", day)


def test_a_datetime_is_not_a_day(tmp_path: Path) -> None:
    with pytest.raises(OmnisendConfigError, match="is a datetime; pass the store-local calendar day"):
        PartitionStaging(str(tmp_path), "shop", datetime(2026, 3, 1, tzinfo=UTC))


def test_names_inside_the_partition_are_validated(staging: PartitionStaging) -> None:
    with pytest.raises(OmnisendConfigError, match="no staging file called 'bodies'; known: events"):
        staging.file("bodies")
    with pytest.raises(OmnisendConfigError, match=r"shard index must be an integer 0\.\.99999, got -1"):
        staging.shard(-1)
    with pytest.raises(OmnisendConfigError, match="body_id must be a sha256 hex digest"):
        staging.receipt_path("../../etc/passwd")
    with pytest.raises(OmnisendConfigError, match="named by a stage"):
        staging.dead_letters("../plan")
    with pytest.raises(OmnisendConfigError, match="not a path inside the partition folder"):
        staging.resolve("../other_shop/plan.json")


# --------------------------------------------------------------------------------------------------
# roots


def test_root_from_env_prefers_override_then_env_then_airflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STAGING_ENV, raising=False)
    assert StagingRoot.from_env().url == f"file://{tmp_path}/home/omnisend-staging"
    monkeypatch.setenv(STAGING_ENV, "  ")  # blank counts as unset
    assert StagingRoot.from_env().url == f"file://{tmp_path}/home/omnisend-staging"
    monkeypatch.setenv(STAGING_ENV, "s3://aws_conn@bucket/omnisend/")
    root = StagingRoot.from_env()
    assert root.url == "s3://aws_conn@bucket/omnisend"
    assert root.path.conn_id == "aws_conn"
    assert not root.is_local
    assert StagingRoot.from_env(str(tmp_path / "override")).url == f"file://{tmp_path}/override"


def test_default_root_without_airflow_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.delenv(STAGING_ENV, raising=False)
    assert StagingRoot.from_env().url == f"file://{Path('~/airflow').expanduser()}/omnisend-staging"


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert StagingRoot("stage").url == f"file://{tmp_path}/stage"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://shared/path", "a file URL needs three slashes and an absolute path: file:///shared/path"),
        ("", "staging root must be a folder or URL"),
    ],
)
def test_bad_roots_name_the_fix(url: str, message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        StagingRoot(url)


def test_root_check_names_the_missing_provider() -> None:
    with pytest.raises(OmnisendConfigError, match="install the Airflow provider that serves nosuchfs://"):
        StagingRoot("nosuchfs://bucket/prefix").check()
    StagingRoot("file:///tmp").check()


def test_file_url_root_end_to_end(tmp_path: Path) -> None:
    root = StagingRoot(f"file://{tmp_path}/shared/")
    partition = root.partition("shop_2", "2026-03-04")
    partition.write_json("validation", {"valid": 3})
    assert (tmp_path / "shared/shop_2/2026-03-04/validation.json").exists()
    assert partition.read_json("validation") == {"valid": 3}
    assert str(root) == f"file://{tmp_path}/shared"


# --------------------------------------------------------------------------------------------------
# reading and writing


def test_json_round_trip_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, staging: PartitionStaging
) -> None:
    path = staging.write_json("plan", {"b": [1, 2], "a": "x"})
    assert path == staging.plan
    assert staging.read_json("plan") == {"a": "x", "b": [1, 2]}
    assert staging.read_json(staging.plan) == {"a": "x", "b": [1, 2]}
    assert Path(staging.plan.path).read_text().startswith('{\n  "a": "x"')  # sorted, readable
    staging.write_json("plan", {"a": "y"})
    assert staging.read_json("plan") == {"a": "y"}
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, staging: PartitionStaging
) -> None:
    staging.write_json("plan", {"version": 1})
    with pytest.raises(RuntimeError, match="worker died"):
        write_then_die(staging, staging.plan)
    assert staging.read_json("plan") == {"version": 1}
    assert leftovers(tmp_path) == []
    with staging.open_write(staging.shard(0)) as out:
        out.write(b"body\n")
    assert Path(staging.shard(0).path).read_bytes() == b"body\n"


def test_missing_or_broken_json_names_the_step_that_writes_it(staging: PartitionStaging) -> None:
    with pytest.raises(
        OmnisendInputError, match="does not exist; the validate step writes it - run that step for shop_1"
    ):
        staging.read_json("validation")
    staging.write_bytes(staging.plan, b"{not json")
    with pytest.raises(OmnisendInputError, match=r"plan\.json is not valid JSON .*the plan step writes it"):
        staging.read_json("plan")


def test_local_copy_of_local_staging_is_the_file_itself(staging: PartitionStaging) -> None:
    staging.write_bytes(staging.valid, b'{"eventID": "1"}\n')
    with staging.local_copy("valid") as local:
        assert local == Path(staging.valid.path)
        assert local.read_bytes() == b'{"eventID": "1"}\n'
    assert Path(staging.valid.path).exists()


# --------------------------------------------------------------------------------------------------
# remote staging (in-memory fsspec filesystem)


def test_remote_writes_reads_and_local_copy(remote: PartitionStaging) -> None:
    assert not remote.is_local
    remote.write_json("plan", {"shards": 2})
    assert remote.read_json("plan") == {"shards": 2}
    with remote.open_write(remote.valid) as out:
        out.write(b'{"eventID": "1"}\n' * 1000)
    with remote.local_copy(remote.valid) as local:
        assert local.is_file()
        assert local.read_bytes() == b'{"eventID": "1"}\n' * 1000
        copy = local
    assert not copy.exists()  # the temporary download is gone
    assert [p.name for p in remote.dir.iterdir()] == ["plan.json", "valid.ndjson"]


def test_remote_failed_stream_leaves_nothing(remote: PartitionStaging) -> None:
    with pytest.raises(RuntimeError, match="worker died"):
        write_then_die(remote, remote.shard(0))
    assert not remote.shard(0).exists()
    assert not remote.bodies_dir.exists() or list(remote.bodies_dir.iterdir()) == []


def test_utc_timestamp() -> None:
    moment = datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(moment) == "2026-03-02T10:00:00.123456Z"
    assert utc_timestamp().endswith("Z")
    with pytest.raises(OmnisendConfigError, match="has no time zone"):
        utc_timestamp(datetime(2026, 3, 2))


# --------------------------------------------------------------------------------------------------
# manifests


def test_manifest_round_trip_through_json(staging: PartitionStaging) -> None:
    manifest = staging.manifest(
        files={"valid": "valid", "rejected": staging.rejected, "shard": "bodies/shard-00003.ndjson"},
        counts={"valid": 98, "rejected": 2},
        hashes={"plan": "0" * 64},
    )
    data = manifest.to_dict()
    assert data == {
        "root": staging.root.url,
        "store_id": "shop_1",
        "day": "2026-03-01",
        "files": {
            "valid": "valid.ndjson",
            "rejected": "rejected.ndjson",
            "shard": "bodies/shard-00003.ndjson",
        },
        "counts": {"valid": 98, "rejected": 2},
        "hashes": {"plan": "0" * 64},
    }
    again = StagingManifest.from_dict(json.loads(json.dumps(data)))
    assert again == manifest
    assert again.partition == staging
    assert again.path("shard") == staging.shard(3)
    assert again.url("valid") == str(staging.valid)


def test_manifest_keeps_the_connection_of_a_remote_root() -> None:
    manifest = PartitionStaging("s3://aws_conn@bucket/prefix", "shop_1", "2026-03-01").manifest(
        files={"plan": "plan"}
    )
    assert manifest.url("plan") == "s3://aws_conn@bucket/prefix/shop_1/2026-03-01/plan.json"
    assert manifest.path("plan").conn_id == "aws_conn"


def test_manifest_is_validated(staging: PartitionStaging) -> None:
    with pytest.raises(OmnisendConfigError, match="not a path inside the partition folder"):
        StagingManifest(staging.root.url, "shop_1", "2026-03-01", files={"x": "../../secrets"})
    with pytest.raises(OmnisendConfigError, match="manifest count 'valid' must be an integer"):
        StagingManifest(staging.root.url, "shop_1", "2026-03-01", counts={"valid": "98"})  # type: ignore[dict-item]
    with pytest.raises(OmnisendConfigError, match="store_id 'Shop' cannot name"):
        StagingManifest(staging.root.url, "Shop", "2026-03-01")
    with pytest.raises(OmnisendInputError, match="names no file 'plan' \\(it has: none\\)"):
        staging.manifest().path("plan")
    with pytest.raises(OmnisendInputError, match="not a staging manifest"):
        StagingManifest.from_dict({"root": staging.root.url})
    assert isinstance(staging.manifest(files={"plan": "plan"}).path("plan"), ObjectStoragePath)
