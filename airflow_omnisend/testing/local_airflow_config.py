"""The parts of a local Airflow deployment that are plain data: its executor profile, what a DAG run looks
like through the REST API, its errors, port picking, the Celery workers' hostname callable, and how logs
are shown. Split from :mod:`airflow_omnisend.testing.local_airflow` (which drives the processes) to keep
each module readable; everything here is re-exported there. No Airflow import.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "HOSTNAME_ENV",
    "TERMINAL_RUN_STATES",
    "AirflowApiError",
    "DagRunInfo",
    "ExecutorProfile",
    "LocalAirflowError",
    "component_hostname",
    "free_port",
    "free_ports",
    "mentions_error",
    "tail",
    "task_log_tail",
]

#: env var naming a Celery worker; ``component_hostname`` reports it as the task instance's hostname
HOSTNAME_ENV = "AIRFLOW_OMNISEND_HOSTNAME"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class LocalAirflowError(OmnisendError, RuntimeError):
    """The local deployment did not start, a command failed, or a wait ran out; the message carries the
    deployment's diagnostics (log tails) when they help."""


class AirflowApiError(LocalAirflowError):
    """The REST API answered with an error status (``status``)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth asking again while waiting: a server-side error (e.g. SQLite busy under load)."""
        return self.status >= 500


def component_hostname() -> str:
    """``[core] hostname_callable`` of a local deployment's Celery workers.

    Two workers on one machine share its FQDN, so task instances would not tell them apart; each worker
    gets its own name through ``AIRFLOW_OMNISEND_HOSTNAME`` and reports that instead.
    """
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; another process could still take it)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (all bound at once while the OS picks them, so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


#: how the messages of :class:`ExecutorProfile` name it
_OWNER = "ExecutorProfile"


@dataclass(frozen=True)
class ExecutorProfile:
    """How the deployment executes tasks, and on which metadata database.

    :param executor: ``LocalExecutor`` or ``CeleryExecutor``.
    :param sql_alchemy_conn: the metadata DB; None means a SQLite file in AIRFLOW_HOME (Local only).
    :param broker_url: the Celery broker (``redis://127.0.0.1:6379/N``); Celery only.
    :param result_backend: Celery's result backend; default ``db+<sql_alchemy_conn>``.
    :param celery_workers: Celery workers to start (each its own process, hostname and log port).
    :param worker_concurrency: task slots of each Celery worker.
    :param parallelism: ``[core] parallelism``: task slots of the executor (LocalExecutor processes).
    """

    executor: str = "LocalExecutor"
    sql_alchemy_conn: str | None = None
    broker_url: str | None = None
    result_backend: str | None = None
    celery_workers: int = 0
    worker_concurrency: int = 4
    parallelism: int = 8

    def __post_init__(self) -> None:
        """Refuse a profile that cannot start: the settings of every executor, then the executor's own."""
        self._check_common()
        if self.executor == "LocalExecutor":
            if self.celery_workers:
                raise LocalAirflowError(
                    f"{_OWNER}.celery_workers={self.celery_workers}: only CeleryExecutor has Celery workers"
                )
            return
        self._check_celery()

    def _check_common(self) -> None:
        """A known executor, whole numbers of task slots, and an absolute SQLite path if SQLite."""
        if self.executor not in ("LocalExecutor", "CeleryExecutor"):
            raise LocalAirflowError(
                f"{_OWNER}.executor={self.executor!r}: choose LocalExecutor or CeleryExecutor"
            )
        for name in ("worker_concurrency", "parallelism"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LocalAirflowError(f"{_OWNER}.{name}={value!r}: give an integer >= 1")
        conn = self.sql_alchemy_conn
        if conn is not None and conn.startswith("sqlite:") and not conn.startswith("sqlite:////"):
            raise LocalAirflowError(
                f"{_OWNER}.sql_alchemy_conn={conn!r}: SQLite paths must be absolute (sqlite:////abs/path.db)"
            )

    def _check_celery(self) -> None:
        """CeleryExecutor: a broker, a metadata database the workers can share, at least one worker."""
        if not self.broker_url:
            raise LocalAirflowError(
                f"{_OWNER}.broker_url is required for CeleryExecutor (redis://host:6379/N)"
            )
        conn = self.sql_alchemy_conn
        if conn is None or conn.startswith("sqlite:"):
            raise LocalAirflowError(
                f"{_OWNER}.sql_alchemy_conn: CeleryExecutor needs a server database such as PostgreSQL "
                "(postgresql+psycopg2://user@127.0.0.1:5432/db); SQLite cannot be shared by workers"
            )
        if isinstance(self.celery_workers, bool) or not isinstance(self.celery_workers, int):
            raise LocalAirflowError(f"{_OWNER}.celery_workers={self.celery_workers!r}: give an integer >= 1")
        if self.celery_workers < 1:
            raise LocalAirflowError(f"{_OWNER}.celery_workers={self.celery_workers}: give at least 1 worker")

    @classmethod
    def local_sqlite(cls, *, parallelism: int = 8) -> ExecutorProfile:
        """LocalExecutor on a SQLite file in AIRFLOW_HOME: the development set-up (works in 3.x)."""
        return cls(parallelism=parallelism)

    @classmethod
    def celery(
        cls,
        sql_alchemy_conn: str,
        broker_url: str,
        *,
        workers: int = 2,
        worker_concurrency: int = 4,
        result_backend: str | None = None,
    ) -> ExecutorProfile:
        """CeleryExecutor: a server metadata DB, a broker, ``workers`` Celery workers."""
        return cls(
            executor="CeleryExecutor",
            sql_alchemy_conn=sql_alchemy_conn,
            broker_url=broker_url,
            result_backend=result_backend,
            celery_workers=workers,
            worker_concurrency=worker_concurrency,
        )


@dataclass(frozen=True)
class DagRunInfo:
    """One DAG run as the REST API reports it (``raw`` keeps every field)."""

    run_id: str
    state: str
    run_type: str
    logical_date: str | None
    data_interval_start: str | None
    start_date: str | None
    end_date: str | None
    partition_key: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DagRunInfo:
        return cls(
            run_id=str(data["dag_run_id"]),
            state=str(data["state"]),
            run_type=str(data.get("run_type")),
            logical_date=data.get("logical_date"),
            data_interval_start=data.get("data_interval_start"),
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            partition_key=data.get("partition_key"),
            raw=data,
        )

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_RUN_STATES


def tail(path: Path, lines: int, line_bytes: int = 200) -> str:
    """The last ``lines`` lines of a log that may be large (reads about ``lines * line_bytes`` bytes)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - line_bytes * lines))
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def mentions_error(path: Path) -> bool:
    """Whether a task log records an error (JSON ``"level":"error"``, or plain text)."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return False
    return '"level":"error"' in text or "ERROR" in text or "Traceback" in text


def task_log_tail(path: Path, lines: int) -> str:
    """The last lines of a task log; Airflow 3 writes JSON lines, shown as ``time level event`` plus the
    exception's type and message, so a failure's cause fits on screen."""
    rendered = []
    for line in tail(path, lines * 4, line_bytes=1000).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            rendered.append(line[:300])
            continue
        if not isinstance(record, dict):
            rendered.append(line[:300])
            continue
        text = f"{record.get('timestamp', '')} {record.get('level', '')} {str(record.get('event', ''))[:400]}"
        for detail in record.get("error_detail") or []:
            if isinstance(detail, dict):
                text += f"\n    {detail.get('exc_type')}: {str(detail.get('exc_value'))[:600]}"
        rendered.append(text)
    return "\n".join(rendered[-lines:])
