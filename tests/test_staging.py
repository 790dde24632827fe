"""Staging: partition layout, validation with fixes, atomic writes, roots from the
environment, file:// and remote (in-memory fsspec) roots, local copies, XCom manifests; and the same
behaviours on s3:// against a real S3-compatible server (moto_server on 127.0.0.1, through an Airflow
AWS connection), where another writer's files must be seen after a listing."""

from __future__ import annotations

import errno
import json
import subprocess
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import fsspec
import pytest
from airflow.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError, OmnisendStagingWriteError
from airflow_omnisend.staging import (
    STAGING_ENV,
    PartitionStaging,
    StagingManifest,
    StagingRoot,
    utc_timestamp,
)
from airflow_omnisend.testing.local_servers import S3Server, ServerUnavailableError, moto_s3_server

if TYPE_CHECKING:
    from collections.abc import Iterator

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


# --------------------------------------------------------------------------------------------------
# s3:// on a real S3-compatible server (moto_server)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    try:
        with moto_s3_server() as server:
            yield server
    except ServerUnavailableError as exc:
        pytest.skip(f"s3 staging tests need moto_server: {exc}")


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> PartitionStaging:
    """A partition under a fresh prefix of the bucket, reached through the server's AWS connection."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    root = StagingRoot(s3_server.staging_url(f"t-{uuid.uuid4().hex[:8]}"))
    return root.partition("shop_1", "2026-03-01")


def s3_key(partition: PartitionStaging, name: str = "") -> str:
    """The object key of a partition file (``name`` relative to its folder), as the bucket lists it."""
    prefix = str(partition.dir).split("@", 1)[1].split("/", 1)[1]
    return f"{prefix}/{name}" if name else prefix


def test_s3_root_uses_the_connection_and_checks(s3: PartitionStaging, s3_server: S3Server) -> None:
    assert not s3.is_local
    assert s3.dir.conn_id == s3_server.conn_id
    s3.root.check()
    assert s3.dir.fs.endpoint_url == s3_server.endpoint_url  # type: ignore[attr-defined]
    assert not s3.dir.exists()  # building paths wrote nothing


def test_s3_json_round_trip_is_one_object_and_leaves_no_temp_key(
    s3: PartitionStaging, s3_server: S3Server
) -> None:
    path = s3.write_json("plan", {"b": [1, 2], "a": "x"})
    assert path == s3.plan
    assert s3.read_json("plan") == {"a": "x", "b": [1, 2]}
    assert s3_server.read(s3_key(s3, "plan.json")).startswith(b'{\n  "a": "x"')
    s3.write_json("plan", {"a": "y"})
    assert s3.read_json("plan") == {"a": "y"}
    assert s3_server.keys(s3_key(s3)) == [s3_key(s3, "plan.json")]


def test_s3_stream_appears_whole_and_a_failed_one_leaves_nothing(
    s3: PartitionStaging, s3_server: S3Server
) -> None:
    s3.write_json("plan", {"version": 1})
    with pytest.raises(RuntimeError, match="worker died"):
        write_then_die(s3, s3.plan)
    with pytest.raises(RuntimeError, match="worker died"):
        write_then_die(s3, s3.shard(0))
    assert s3.read_json("plan") == {"version": 1}
    assert not s3.shard(0).exists()
    assert s3_server.keys(s3_key(s3)) == [s3_key(s3, "plan.json")]  # no temporary key either
    body = b'{"eventID": "1"}\n' * 200_000  # 3.4 MB: several parts of a streamed upload
    with s3.open_write(s3.shard(0)) as out:
        out.write(body)
    assert s3_server.read(s3_key(s3, "bodies/shard-00000.ndjson")) == body
    assert s3_server.keys(s3_key(s3)) == [s3_key(s3, "bodies/shard-00000.ndjson"), s3_key(s3, "plan.json")]


def test_s3_missing_or_broken_json_names_the_step_that_writes_it(s3: PartitionStaging) -> None:
    with pytest.raises(
        OmnisendInputError, match=r"validation\.json does not exist; the validate step writes it"
    ):
        s3.read_json("validation")
    s3.write_bytes(s3.plan, b"{not json")
    with pytest.raises(OmnisendInputError, match=r"plan\.json is not valid JSON .*the plan step writes it"):
        s3.read_json("plan")


def test_s3_local_copy_is_a_temporary_download(s3: PartitionStaging) -> None:
    s3.write_bytes(s3.valid, b'{"eventID": "1"}\n' * 1000)
    with s3.local_copy("valid") as local:
        assert local.read_bytes() == b'{"eventID": "1"}\n' * 1000
        copy = local
    assert not copy.exists()
    assert s3.valid.exists()


def test_s3_another_writers_files_are_seen_after_a_listing(s3: PartitionStaging, s3_server: S3Server) -> None:
    """A listing is not cached: a receipt another worker wrote after it is found (else a retry would
    take the body for unsent and POST it again)."""
    s3.write_json(s3.receipt_path(BODY), {"status": "submitted"})
    assert [p.name for p in s3.receipts_dir.iterdir()] == [f"{BODY}.json"]
    other = "cd" * 32
    s3_server.client().put_object(
        Bucket=s3_server.bucket, Key=s3_key(s3, f"receipts/{other}.json"), Body=b'{"status": "finished"}'
    )
    assert sorted(p.name for p in s3.receipts_dir.iterdir()) == [f"{BODY}.json", f"{other}.json"]
    assert s3.receipt_path(other).exists()
    assert s3.read_json(s3.receipt_path(other)) == {"status": "finished"}
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=s3_key(s3, f"receipts/{BODY}.json"))
    assert not s3.receipt_path(BODY).exists()


def test_s3_discard_staged_events_keeps_receipts_and_plan(s3: PartitionStaging, s3_server: S3Server) -> None:
    s3.write_bytes(s3.events, b"e\n")
    s3.write_bytes(s3.valid, b"v\n")
    s3.write_bytes(s3.shard(0), b"b\n")
    s3.write_json("plan", {})
    s3.write_json(s3.receipt_path(BODY), {})
    assert s3.discard_staged_events() == ["events.ndjson", "valid.ndjson", "bodies"]
    assert s3_server.keys(s3_key(s3)) == [s3_key(s3, "plan.json"), s3_key(s3, f"receipts/{BODY}.json")]
    assert s3.discard_staged_events() == []


def test_s3_manifest_round_trip_reads_the_same_objects(s3: PartitionStaging) -> None:
    s3.write_json("validation", {"valid": 3})
    manifest = StagingManifest.from_dict(
        json.loads(json.dumps(s3.manifest(files={"validation": "validation"}).to_dict()))
    )
    assert manifest.partition == s3
    assert manifest.partition.read_json(manifest.path("validation")) == {"valid": 3}


# --------------------------------------------------------------------------------------------------
# a full volume: a clear error naming the file, and never a partial file under its name


class _FullFile(MemoryFile):
    """A memory file on a volume with ``capacity`` bytes left: the write past it fails with ENOSPC."""

    fs: _FullMemoryFileSystem

    def write(self, data: Any) -> int:
        fs = self.fs
        if fs.written + len(data) > fs.capacity:
            raise OSError(errno.ENOSPC, "No space left on device")
        fs.written += len(data)
        return super().write(data)


class _FullMemoryFileSystem(MemoryFileSystem):
    """fsspec's memory filesystem (a file exists, partial, while it is written) that fills up."""

    protocol = "fullmem"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]

    def __init__(self, capacity: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capacity, self.written = capacity, 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" not in mode:
            return super()._open(path, mode, **kwargs)
        path = self._strip_protocol(path)
        file = _FullFile(self, path)
        file.commit()  # like MemoryFileSystem: the file is there from the moment it is opened
        return file


@pytest.fixture
def full_remote() -> tuple[PartitionStaging, _FullMemoryFileSystem]:
    from airflow.sdk.io.store import attach

    fsspec.register_implementation("fullmem", _FullMemoryFileSystem, clobber=True)
    fs = _FullMemoryFileSystem(capacity=4096)
    attach(protocol="fullmem", fs=fs)
    return PartitionStaging(f"fullmem://bucket-{uuid.uuid4().hex[:8]}/prefix", "shop_1", "2026-03-01"), fs


def _stream(staging: PartitionStaging, path: ObjectStoragePath, line: bytes, times: int) -> None:
    with staging.open_write(path) as out:
        for _ in range(times):
            out.write(line)


def _stored(fs: _FullMemoryFileSystem, staging: PartitionStaging) -> list[str]:
    """The files the filesystem holds under the partition folder (relative names)."""
    folder = fs._strip_protocol(staging.dir.path).rstrip("/") + "/"
    return sorted(key.removeprefix(folder) for key in fs.store if key.startswith(folder))


@pytest.mark.filterwarnings("ignore:UPath 'fullmem' filesystem not explicitly implemented")
def test_a_full_remote_volume_fails_with_the_path_and_the_fix_and_leaves_no_partial_file(
    full_remote: tuple[PartitionStaging, _FullMemoryFileSystem],
) -> None:
    staging, fs = full_remote
    receipt = staging.receipt_path(BODY)
    staging.write_json(receipt, {"status": "submitted", "batch_id": "b1"})
    fs.capacity = fs.written + 100  # the next receipt does not fit
    with pytest.raises(OmnisendStagingWriteError) as failed:
        staging.write_json(receipt, {"status": "finished", "batch_id": "b1", "pad": "x" * 500})
    text = str(failed.value)
    assert str(receipt) in text
    assert "no space left" in text
    assert STAGING_ENV in text
    assert failed.value.path == str(receipt)
    assert isinstance(failed.value.__cause__, OSError)
    assert staging.read_json(receipt) == {"status": "submitted", "batch_id": "b1"}  # the old one, whole
    assert _stored(fs, staging) == [f"receipts/{BODY}.json"]  # no temporary file left beside it
    with pytest.raises(OmnisendStagingWriteError, match=r"valid\.ndjson"):
        _stream(staging, staging.valid, b'{"eventID": "1"}\n', 100)
    assert not staging.valid.exists()
    assert _stored(fs, staging) == [f"receipts/{BODY}.json"]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (mount needs root; skipped where it cannot be mounted)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_local_disk_fails_with_the_path_and_leaves_the_finished_file_as_it_was(
    tiny_tmpfs: Path,
) -> None:
    staging = PartitionStaging(str(tiny_tmpfs), "shop_1", "2026-03-01")
    line = b'{"eventID": "%d", "eventTime": "2026-03-01T00:00:00Z"}\n'
    with staging.open_write(staging.events) as out:
        out.write(line * 100)
    finished = Path(staging.events.path).read_bytes()
    with pytest.raises(OmnisendStagingWriteError) as failed:
        _stream(staging, staging.events, line, 10_000)  # ~500 KB on a 64 KiB volume
    assert str(staging.events) in str(failed.value)
    assert "ENOSPC" in str(failed.value)
    assert Path(staging.events.path).read_bytes() == finished
    assert leftovers(tiny_tmpfs) == []
    with pytest.raises(OmnisendStagingWriteError, match=r"plan\.json"):
        staging.write_json("plan", {"pad": "x" * 200_000})
    assert not Path(staging.plan.path).exists()


def test_other_write_errors_are_not_taken_for_a_full_volume(staging: PartitionStaging) -> None:
    with pytest.raises(PermissionError), staging.open_write(staging.valid):
        raise PermissionError(errno.EACCES, "denied")
    assert not Path(staging.valid.path).exists()


def test_a_full_temporary_folder_fails_the_local_copy_of_a_remote_file_clearly(
    remote: PartitionStaging, tiny_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with remote.open_write(remote.valid) as out:
        out.write(b'{"eventID": "1"}\n' * 10_000)  # 170 KB: more than the 64 KiB temporary folder
    monkeypatch.setattr(tempfile, "tempdir", str(tiny_tmpfs))
    with pytest.raises(OmnisendStagingWriteError, match="TMPDIR") as failed, remote.local_copy(remote.valid):
        pass
    assert str(remote.valid) in str(failed.value)
    assert list(tiny_tmpfs.iterdir()) == []  # the partial download is gone
