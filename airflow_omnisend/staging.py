"""Where a partition's data lives between tasks: ``<staging root>/<store_id>/<partition key>/``.

The partition key is ``YYYY-MM-DD``, ``YYYY-Www`` or ``YYYY-MM`` (the store's period,
``events.partition``); the store's folder is the same whatever its period.

Tasks of one partition may run on different workers, so they hand data over through files, and XCom
carries only small manifests (root URL, store, day, file names, counts, hashes). The root is an
``ObjectStoragePath``: a local folder by default (``$AIRFLOW_HOME/omnisend-staging``), or whatever
``AIRFLOW_OMNISEND_STAGING`` names - a folder, ``file:///shared/path`` on a shared mount, or an fsspec
URL with the Airflow connection as user, ``s3://aws_conn@bucket/prefix``, when workers are on several
machines.

Layout of one partition::

    events.ndjson  rows_rejected.ndjson  extract.json       extract
    valid.ndjson  rejected.ndjson  validation.json      validate
    automation_check.json                               safety
    plan.json  bodies/shard-00000.ndjson ...            plan
    receipts/<body sha256>.json                         send (one per body: the crash-safe record,
                                                        operators/receipts.py reads and writes them)
    receipts/followups/<body>-r<N>.json  bodies/followups/<body>-r<N>.json
                                                        send (retries of failed items, per round)
    dead_letters/plan.ndjson  dead_letters/send-<body>.ndjson   plan, send
    report.json                                         report

Retention: once a period is sent and accounted for, the report step deletes the big copies of its
events (:data:`DISCARDED_AFTER_SEND`: events, selected events, valid events, bodies) unless the store
sets ``keep_staged_events: true``; receipts, reports, rejected rows and events, dead letters and
``plan.json`` stay. A rerun re-extracts, re-plans the same bodies and skips them by their receipts.

Writes are atomic where the store allows: a local file is written under a temporary name and
renamed over the target, so a killed task never leaves half a receipt; an object store gets small
files in one PUT and streams under a temporary key that is moved into place on success (a task
killed mid-stream leaves at most a ``.<name>.<random>.tmp`` key, which no reader takes for a file);
other filesystems (memory, sftp...) get every file through a temporary name. A full, over-quota or
read-only volume fails the write with :class:`~airflow_omnisend.exceptions.OmnisendStagingWriteError`
naming the file and the fix, and leaves nothing under the file's name.

An object store's folder listings are not cached in the process (fsspec's ``use_listings_cache`` is
off for the root's protocol, unless set otherwise): another worker's receipt written after a listing
must still be found, or a retry would send its body again.

Only ``airflow.sdk`` is imported from Airflow.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import fsspec.config
import orjson
from airflow.sdk import ObjectStoragePath

from airflow_omnisend.events.ids import check_store_id
from airflow_omnisend.events.partition import canonical_partition_label
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError, OmnisendStagingWriteError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

STAGING_ENV = "AIRFLOW_OMNISEND_STAGING"
DEFAULT_STAGING_DIRNAME = "omnisend-staging"
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_BODY_ID = re.compile(r"[0-9a-f]{64}")
_STAGE = re.compile(r"[a-z0-9_-]+")

#: logical name -> file name in the partition folder, and the step that writes it (for error messages)
FILES: dict[str, tuple[str, str]] = {
    "events": ("events.ndjson", "extract"),
    "rows_rejected": ("rows_rejected.ndjson", "extract"),
    "extract": ("extract.json", "extract"),
    "unplaceable": ("unplaceable_rows.ndjson", "extract"),
    "valid": ("valid.ndjson", "validate"),
    "rejected": ("rejected.ndjson", "validate"),
    "validation": ("validation.json", "validate"),
    "automation_check": ("automation_check.json", "automation safety check"),
    "plan": ("plan.json", "plan"),
    "plan_preview": ("plan_preview.json", "plan (dry run)"),
    "report": ("report.json", "report"),
}
BODIES_DIR = "bodies"
#: what :meth:`PartitionStaging.discard_staged_events` deletes: the copies of the events, in the folder
DISCARDED_AFTER_SEND: tuple[str, ...] = ("events.ndjson", "events_selected.ndjson", "valid.ndjson", "bodies")
RECEIPTS_DIR = "receipts"
DEAD_LETTERS_DIR = "dead_letters"
FOLLOWUPS_DIR = "followups"
#: object stores whose single PUT is atomic: a small file is written in one request, not via a temp key
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
#: write errors a person fixes on the staging volume (space, quota, size limit, read-only)
_VOLUME_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the volume allows",
    errno.EROFS: "the volume is read-only",
}


def _write_error(path: ObjectStoragePath, exc: OSError) -> OmnisendStagingWriteError | None:
    """``exc`` (raised writing ``path``) as a provider error naming the path and the fix, when it is a
    volume problem (full, over quota, read-only); None for any other error."""
    what = _VOLUME_ERRORS.get(exc.errno or 0)
    if what is None:
        return None
    return OmnisendStagingWriteError(
        f"cannot write staging file {path}: {what} ({errno.errorcode.get(exc.errno or 0, exc.errno)}). "
        "Nothing partial was kept under that name (staging writes a temporary file and renames it only "
        f"when complete). Fix: free space on the staging volume, or point {STAGING_ENV} at a larger "
        "one, then retry the task",
        path=str(path),
    )


def utc_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as an ISO-8601 UTC string with a ``Z``, the form receipts use."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise OmnisendConfigError(f"timestamp {moment!r} has no time zone; pass an aware datetime (UTC)")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_body_id(value: object) -> bool:
    """Whether ``value`` is a body id: the sha256 of a planned body, 64 lowercase hex digits."""
    return isinstance(value, str) and _BODY_ID.fullmatch(value) is not None


def is_local(path: ObjectStoragePath) -> bool:
    """Whether ``path`` is on this machine's filesystem (plain path, ``file://`` or ``local://``)."""
    return path.protocol in _LOCAL_PROTOCOLS


# ---------------------------------------------------------------------------------------------------
# the root


def _no_listings_cache(protocol: str) -> None:
    """Make filesystems of ``protocol`` created from now on list folders afresh each time (fsspec
    applies its config to every new instance); an explicit setting of the user's wins."""
    fsspec.config.conf.setdefault(protocol, {}).setdefault("use_listings_cache", False)


@dataclass(frozen=True)
class StagingRoot:
    """The staging root, as a URL string (keeps the connection id: ``s3://conn@bucket/prefix``).

    Local folders are kept as ``file:///absolute/path``.
    """

    url: str

    def __post_init__(self) -> None:
        url = self.url
        if not isinstance(url, str) or not url.strip():
            raise OmnisendConfigError(
                f"staging root must be a folder or URL, got {url!r}; set {STAGING_ENV} to e.g. "
                "/shared/omnisend-staging or s3://aws_conn@bucket/prefix"
            )
        url = url.strip()
        if "://" not in url:
            url = "file://" + Path(url).expanduser().resolve().as_posix()
        parts = urlsplit(url)
        if parts.scheme in ("file", "local") and parts.netloc not in ("", "localhost"):
            raise OmnisendConfigError(
                f"staging root {self.url!r} names the host {parts.netloc!r}; a file URL needs three "
                f"slashes and an absolute path: file:///{parts.netloc}{parts.path}"
            )
        if parts.scheme in ("file", "local") and not parts.path.startswith("/"):
            raise OmnisendConfigError(
                f"staging root {self.url!r} is not an absolute path; use file:///absolute/path"
            )
        object.__setattr__(self, "url", url.rstrip("/") or url)
        if parts.scheme not in _LOCAL_PROTOCOLS:
            _no_listings_cache(parts.scheme)

    @classmethod
    def from_env(cls, override: str | None = None) -> StagingRoot:
        """The root to use: ``override`` (an operator argument), else ``$AIRFLOW_OMNISEND_STAGING``,
        else ``$AIRFLOW_HOME/omnisend-staging`` (``~/airflow`` when AIRFLOW_HOME is unset)."""
        for candidate in (override, os.environ.get(STAGING_ENV)):
            if candidate is not None and candidate.strip():
                return cls(candidate)
        home = os.environ.get("AIRFLOW_HOME") or "~/airflow"
        return cls(str(Path(home).expanduser() / DEFAULT_STAGING_DIRNAME))

    @property
    def path(self) -> ObjectStoragePath:
        return ObjectStoragePath(self.url)

    @property
    def is_local(self) -> bool:
        return is_local(self.path)

    def check(self) -> None:
        """Fail early, with the fix, when no filesystem can serve this root (e.g. s3 without the
        Amazon provider), instead of in the middle of a task."""
        try:
            self.path.fs  # noqa: B018 - resolving the filesystem is the check
        except (ImportError, ValueError) as exc:
            scheme = urlsplit(self.url).scheme
            raise OmnisendConfigError(
                f"staging root {self.url} cannot be used: {exc}; install the Airflow provider that "
                f"serves {scheme}:// (e.g. apache-airflow-providers-amazon for s3) or set {STAGING_ENV} "
                "to a folder every worker can reach"
            ) from exc

    def partition(self, store_id: str, day: str | date) -> PartitionStaging:
        return PartitionStaging(self, store_id, day)

    def __str__(self) -> str:
        return self.url


# ---------------------------------------------------------------------------------------------------
# one partition


def _staging_day(day: object) -> str:
    """``day`` (a partition key of any period, or a date) as the folder name (``events.partition``)."""
    if isinstance(day, datetime):
        raise OmnisendConfigError(
            f"day {day!r} is a datetime; pass the store-local calendar day as a date or 'YYYY-MM-DD'"
        )
    try:
        return canonical_partition_label(day)
    except OmnisendConfigError:
        raise OmnisendConfigError(
            f"day {day!r} is not a calendar day in YYYY-MM-DD form; pass e.g. '2026-03-01' "
            "(the store-local day of the partition), or a week 'YYYY-Www' / month 'YYYY-MM' key"
        ) from None


@dataclass(frozen=True)
class PartitionStaging:
    """The files of one partition (store, store-local day). Cheap to build; touches no storage."""

    root: StagingRoot
    store_id: str
    day: str

    def __init__(self, root: StagingRoot | str, store_id: str, day: str | date) -> None:
        object.__setattr__(self, "root", root if isinstance(root, StagingRoot) else StagingRoot(root))
        object.__setattr__(self, "store_id", check_store_id(store_id, purpose="name a staging folder"))
        object.__setattr__(self, "day", _staging_day(day))

    # -- paths ---------------------------------------------------------------------------------------

    @property
    def dir(self) -> ObjectStoragePath:
        return self.root.path / self.store_id / self.day

    @property
    def is_local(self) -> bool:
        return self.root.is_local

    def file(self, name: str) -> ObjectStoragePath:
        """A partition file by logical name (``events``, ``valid``, ``plan``, ... see :data:`FILES`)."""
        try:
            return self.dir / FILES[name][0]
        except KeyError:
            raise OmnisendConfigError(f"no staging file called {name!r}; known: {', '.join(FILES)}") from None

    @property
    def events(self) -> ObjectStoragePath:
        return self.file("events")

    @property
    def rows_rejected(self) -> ObjectStoragePath:
        return self.file("rows_rejected")

    @property
    def valid(self) -> ObjectStoragePath:
        return self.file("valid")

    @property
    def rejected(self) -> ObjectStoragePath:
        return self.file("rejected")

    @property
    def validation(self) -> ObjectStoragePath:
        return self.file("validation")

    @property
    def plan(self) -> ObjectStoragePath:
        return self.file("plan")

    @property
    def report(self) -> ObjectStoragePath:
        return self.file("report")

    @property
    def bodies_dir(self) -> ObjectStoragePath:
        return self.dir / BODIES_DIR

    def discard_staged_events(self) -> list[str]:
        """Delete the partition's copies of its events (:data:`DISCARDED_AFTER_SEND`); return what went.

        Only for a partition whose report accounted for every event: the rest (receipts, report,
        rejected, dead letters, plan) is what a rerun and a person need.
        """
        removed: list[str] = []
        for name in DISCARDED_AFTER_SEND:
            path = self.dir / name
            if path.exists():
                path.fs.rm(path.path, recursive=path.is_dir())
                removed.append(name)
        return removed

    def shard(self, index: int) -> ObjectStoragePath:
        """``bodies/shard-00000.ndjson``: the planned bodies of shard ``index``, one per line."""
        _check_index("shard", index)
        return self.bodies_dir / f"shard-{index:05d}.ndjson"

    @property
    def receipts_dir(self) -> ObjectStoragePath:
        return self.dir / RECEIPTS_DIR

    def receipt_path(self, body_id: str) -> ObjectStoragePath:
        if not is_body_id(body_id):
            raise OmnisendConfigError(f"body_id must be a sha256 hex digest, got {body_id!r}")
        return self.receipts_dir / f"{body_id}.json"

    @property
    def dead_letters_dir(self) -> ObjectStoragePath:
        return self.dir / DEAD_LETTERS_DIR

    def dead_letters(self, stage_or_shard: str | int) -> ObjectStoragePath:
        """``dead_letters/plan.ndjson`` for a stage, ``dead_letters/shard-00003.ndjson`` for a shard."""
        if isinstance(stage_or_shard, int) and not isinstance(stage_or_shard, bool):
            _check_index("shard", stage_or_shard)
            return self.dead_letters_dir / f"shard-{stage_or_shard:05d}.ndjson"
        if isinstance(stage_or_shard, str) and _STAGE.fullmatch(stage_or_shard):
            return self.dead_letters_dir / f"{stage_or_shard}.ndjson"
        raise OmnisendConfigError(
            f"dead letters are named by a stage ('plan', 'send') or a shard number, got {stage_or_shard!r}"
        )

    def _as_path(self, path: ObjectStoragePath | str) -> ObjectStoragePath:
        if not isinstance(path, str):
            return path
        return self.file(path) if path in FILES else self.resolve(path)

    def relative(self, path: ObjectStoragePath) -> str:
        """``path`` relative to the partition folder (the form manifests carry)."""
        base, full = str(self.dir).rstrip("/") + "/", str(path)
        if not full.startswith(base):
            raise OmnisendConfigError(f"{full} is not inside the partition folder {self.dir}")
        return full[len(base) :]

    def resolve(self, relative: str) -> ObjectStoragePath:
        """The inverse of :meth:`relative`; refuses paths that climb out of the partition."""
        parts = relative.split("/")
        if not relative or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise OmnisendConfigError(f"{relative!r} is not a path inside the partition folder")
        path = self.dir
        for part in parts:
            path = path / part
        return path

    # -- reading and writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_write(self, path: ObjectStoragePath) -> Iterator[BinaryIO]:
        """A binary file that appears at ``path`` only when the block ends without an error. A full (or
        read-only) volume raises :class:`OmnisendStagingWriteError` naming ``path``."""
        try:
            with self._atomic_write(path) as out:
                yield out
        except OSError as exc:
            error = _write_error(path, exc)
            if error is None:
                raise
            raise error from exc

    @staticmethod
    @contextlib.contextmanager
    def _atomic_write(path: ObjectStoragePath) -> Iterator[BinaryIO]:
        if is_local(path):
            target = Path(path.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
            try:
                with open(tmp, "wb") as out:
                    yield out
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            return
        tmp_remote = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            with tmp_remote.fs.open(tmp_remote.path, "wb") as out:
                yield cast("BinaryIO", out)
            tmp_remote.fs.mv(tmp_remote.path, path.path)
        finally:
            with contextlib.suppress(OSError):
                if tmp_remote.exists():
                    tmp_remote.unlink()

    def write_bytes(self, path: ObjectStoragePath, data: bytes) -> None:
        """Write a small file in one piece: one PUT on an object store (atomic there), else under a
        temporary name renamed when complete (a local folder, and filesystems such as memory or sftp
        whose files exist, partial, while they are written)."""
        if is_local(path) or path.protocol not in _ATOMIC_PUT_PROTOCOLS:
            with self.open_write(path) as out:
                out.write(data)
            return
        try:
            path.write_bytes(data)
        except OSError as exc:
            error = _write_error(path, exc)
            if error is None:
                raise
            raise error from exc

    def write_json(self, path: ObjectStoragePath | str, data: Any) -> ObjectStoragePath:
        """Write ``data`` as indented JSON (``path`` or a logical name such as ``"plan"``)."""
        target = self._as_path(path)
        self.write_bytes(
            target, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        return target

    def read_json(self, path: ObjectStoragePath | str) -> Any:
        """Read a JSON file (``path`` or a logical name); a missing or broken file says which step
        writes it."""
        target = self._as_path(path)
        writer = next((step for file, step in FILES.values() if file == target.name), None)
        hint = (
            f"; the {writer} step writes it - run that step for {self.store_id} {self.day} first"
            if writer
            else ""
        )
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise OmnisendInputError(f"{target} does not exist{hint}") from None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise OmnisendInputError(f"{target} is not valid JSON ({exc}){hint}") from exc

    def followup_receipt_path(self, root_body_id: str, round_number: int) -> ObjectStoragePath:
        """``receipts/followups/<root body>-r<N>.json``: the receipt of follow-up round ``N`` (>= 1) of a
        planned body. Named by root and round, not by content, so a resumed sender finds it without
        rebuilding the follow-up first."""
        self.receipt_path(root_body_id)  # validates the id
        _check_round(round_number)
        return self.receipts_dir / FOLLOWUPS_DIR / f"{root_body_id}-r{round_number}.json"

    def followup_body_path(self, root_body_id: str, round_number: int) -> ObjectStoragePath:
        """``bodies/followups/<root body>-r<N>.json``: the exact bytes of follow-up round ``N``."""
        self.receipt_path(root_body_id)
        _check_round(round_number)
        return self.bodies_dir / FOLLOWUPS_DIR / f"{root_body_id}-r{round_number}.json"

    def send_dead_letters(self, body_id: str) -> ObjectStoragePath:
        """``dead_letters/send-<body_id>.ndjson``: events of one planned body given up on by the sender
        (rewritten whole each time, so a retried task never duplicates a line)."""
        self.receipt_path(body_id)
        return self.dead_letters(f"send-{body_id}")

    @contextlib.contextmanager
    def local_copy(self, path: ObjectStoragePath | str) -> Iterator[Path]:
        """A local filesystem path with the content of ``path``: the file itself for local staging,
        a temporary download (deleted afterwards) for remote staging."""
        source = self._as_path(path)
        if is_local(source):
            yield Path(source.path)
            return
        folder = Path(tempfile.mkdtemp(prefix="omnisend-staging-"))
        try:
            local = folder / source.name
            try:
                with source.fs.open(source.path, "rb") as src, open(local, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except OSError as exc:
                if (exc.errno or 0) not in _VOLUME_ERRORS:
                    raise
                raise OmnisendStagingWriteError(
                    f"cannot copy {source} to the worker's temporary folder {folder.parent} "
                    f"({_VOLUME_ERRORS[exc.errno or 0]}). Fix: free space there, or point TMPDIR at a "
                    "larger volume, then retry the task",
                    path=str(local),
                ) from exc
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def manifest(
        self,
        files: Mapping[str, ObjectStoragePath | str] | None = None,
        counts: Mapping[str, int] | None = None,
        hashes: Mapping[str, str] | None = None,
    ) -> StagingManifest:
        """A small, JSON-friendly description of this partition's files for XCom.

        :param files: name -> a path in the partition, a logical file name (``"valid"``) or a path
            relative to the partition folder (``"bodies/shard-00000.ndjson"``).
        """
        relative = {name: self.relative(self._as_path(p)) for name, p in (files or {}).items()}
        return StagingManifest(
            root=self.root.url,
            store_id=self.store_id,
            day=self.day,
            files=relative,
            counts=dict(counts or {}),
            hashes=dict(hashes or {}),
        )


def _check_round(value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 1000:
        raise OmnisendConfigError(f"follow-up round must be an integer 1..999, got {value!r}")


def _check_index(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 100_000:
        raise OmnisendConfigError(f"{name} index must be an integer 0..99999, got {value!r}")


# ---------------------------------------------------------------------------------------------------
# manifests


@dataclass(frozen=True)
class StagingManifest:
    """What a task returns through XCom: where the partition is and what it wrote. Never event data.

    :param files: logical name -> path relative to the partition folder (``"valid.ndjson"``).
    :param counts: name -> number (``{"events": 1234}``).
    :param hashes: name -> hex digest (``{"plan": "<sha256>"}``).
    """

    root: str
    store_id: str
    day: str
    files: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        partition = PartitionStaging(self.root, self.store_id, self.day)  # validates all three
        object.__setattr__(self, "root", partition.root.url)
        object.__setattr__(self, "day", partition.day)
        for relative in self.files.values():
            partition.resolve(relative)
        for name, count in self.counts.items():
            if not isinstance(count, int) or isinstance(count, bool):
                raise OmnisendConfigError(f"manifest count {name!r} must be an integer, got {count!r}")
        for name, digest in self.hashes.items():
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{8,128}", digest):
                raise OmnisendConfigError(f"manifest hash {name!r} must be a hex digest, got {digest!r}")

    @property
    def partition(self) -> PartitionStaging:
        return PartitionStaging(self.root, self.store_id, self.day)

    def path(self, name: str) -> ObjectStoragePath:
        try:
            relative = self.files[name]
        except KeyError:
            raise OmnisendInputError(
                f"the manifest of {self.store_id} {self.day} names no file {name!r} (it has: "
                f"{', '.join(self.files) or 'none'}); did the upstream task write it?"
            ) from None
        return self.partition.resolve(relative)

    def url(self, name: str) -> str:
        return str(self.path(name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "store_id": self.store_id,
            "day": self.day,
            "files": dict(self.files),
            "counts": dict(self.counts),
            "hashes": dict(self.hashes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StagingManifest:
        try:
            return cls(
                root=data["root"],
                store_id=data["store_id"],
                day=data["day"],
                files=dict(data.get("files") or {}),
                counts=dict(data.get("counts") or {}),
                hashes=dict(data.get("hashes") or {}),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise OmnisendInputError(
                f"not a staging manifest ({exc!r}); the upstream task must return StagingManifest.to_dict()"
            ) from exc
