"""Throw-away resources on local servers for a distributed test deployment.

A test run gets a fresh PostgreSQL database (dropped afterwards), a Redis database number nobody
else uses (flushed afterwards), and an S3-compatible server of its own (moto's ``moto_server``, a real
process on 127.0.0.1, stopped afterwards) for remote staging, so runs in parallel, or after a crashed
run, never see each other's metadata, Celery messages or staged files. When a server is not reachable,
:class:`ServerUnavailableError` says which and how it was tried, for a ``pytest.skip`` reason. No
Airflow import; the drivers are imported lazily.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.testing.local_airflow import LocalAirflowError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "S3Server",
    "ServerUnavailableError",
    "free_redis_database",
    "fresh_postgres_database",
    "moto_s3_server",
]

#: key that claims a Redis database number for one test run
REDIS_CLAIM_KEY = "airflow-omnisend:claimed-by"
#: moto accepts any keys; these only have to be present
S3_DUMMY_KEYS = ("testing", "testing")
S3_REGION = "us-east-1"


class ServerUnavailableError(LocalAirflowError):
    """A local server the distributed set-up needs is not reachable (tests skip with this message)."""


def _reachable(host: str, port: int, what: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return
    except OSError as exc:
        raise ServerUnavailableError(f"{what} is not reachable at {host}:{port} ({exc})") from exc


def _pg_connect(host: str, port: int, user: str, dbname: str) -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg2 only
        import psycopg2

        conn = psycopg2.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=5)
        conn.autocommit = True
        return conn
    return psycopg.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=5, autocommit=True)


@contextlib.contextmanager
def fresh_postgres_database(
    host: str = "127.0.0.1", port: int = 5432, user: str = "postgres", prefix: str = "airflow_omnisend_e2e"
) -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL (``postgresql+psycopg2://...``), drop it after
    (connections still open are ended by ``DROP DATABASE ... WITH (FORCE)``)."""
    _reachable(host, port, "PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = _pg_connect(host, port, user, "postgres")
    except Exception as exc:
        raise ServerUnavailableError(
            f"PostgreSQL at {host}:{port} refused user {user!r} (trust auth expected): {exc}"
        ) from exc
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg2://{user}@{host}:{port}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextlib.contextmanager
def free_redis_database(host: str = "127.0.0.1", port: int = 6379) -> Iterator[str]:
    """Claim an empty Redis database number (``SET NX`` of a claim key, so two runs never share one),
    yield its URL (``redis://host:port/N``), flush it after."""
    _reachable(host, port, "Redis")
    import redis

    probe = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        try:
            configured = probe.config_get("databases").get("databases", "16")
            databases = int(str(configured))
        except redis.RedisError as exc:
            if isinstance(exc, redis.ConnectionError):
                raise ServerUnavailableError(f"Redis at {host}:{port} does not answer: {exc}") from exc
            databases = 16  # CONFIG may be disabled; 16 is Redis's default
    finally:
        probe.close()
    claim = uuid.uuid4().hex
    for number in range(1, databases):  # 0 is where everything else goes by default
        client = redis.Redis(host=host, port=port, db=number, socket_timeout=5)
        try:
            if client.dbsize() == 0 and client.set(REDIS_CLAIM_KEY, claim, nx=True):
                try:
                    yield f"redis://{host}:{port}/{number}"
                finally:
                    client.flushdb()
                return
        finally:
            client.close()
    raise ServerUnavailableError(f"Redis at {host}:{port} has no empty database among 1-{databases - 1}")


# ---------------------------------------------------------------------------------------------------
# an S3-compatible server (moto)


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server with one empty bucket, and the Airflow connection that reaches it.

    :param conn_id: an AWS connection id unique to this server (Airflow caches a filesystem per
        connection id in a process, so two servers must not share one).
    """

    endpoint_url: str
    bucket: str
    conn_id: str

    @property
    def connection(self) -> dict[str, Any]:
        """The Airflow connection (JSON form of ``AIRFLOW_CONN_<ID>``): conn type aws, dummy keys,
        ``endpoint_url`` in the extra."""
        return {
            "conn_type": "aws",
            "login": S3_DUMMY_KEYS[0],
            "password": S3_DUMMY_KEYS[1],
            "extra": {"endpoint_url": self.endpoint_url, "region_name": S3_REGION},
        }

    @property
    def env(self) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": <connection JSON>}``: the connection for a process's environment."""
        return {f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(self.connection)}

    def staging_url(self, prefix: str) -> str:
        """``s3://<conn_id>@<bucket>/<prefix>``: a staging root in the bucket, read with the connection."""
        return f"s3://{self.conn_id}@{self.bucket}/{prefix.strip('/')}"

    def client(self) -> Any:
        """A boto3 S3 client of the server (to look at the bucket without going through staging)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_DUMMY_KEYS[0],
            aws_secret_access_key=S3_DUMMY_KEYS[1],
            region_name=S3_REGION,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def read(self, key: str) -> bytes:
        body = self.client().get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()


def _moto_server_binary() -> str:
    found = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(found).is_file():
        raise ServerUnavailableError(
            "moto_server (an S3-compatible server) is not installed; pip install 'moto[server]' "
            "(the project's dev extra has it)"
        )
    return found


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_until_answering(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers HTTP; fail with the server's log when it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0):
                return
        except urllib.error.HTTPError:
            return  # it answered, if not with 200
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text("utf-8", "replace")[-2000:]
            state = f"exited with {proc.returncode}" if proc.returncode is not None else "never answered"
            raise ServerUnavailableError(f"moto_server at {url} {state} within {timeout:.0f} s: {tail}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def moto_s3_server(
    bucket: str = "omnisend-staging", host: str = "127.0.0.1", start_timeout: float = 60.0
) -> Iterator[S3Server]:
    """Start ``moto_server`` on a free port of ``host`` (a real process; its state lives in memory),
    wait until it answers, create ``bucket``, yield the :class:`S3Server`; stop the process after."""
    binary = _moto_server_binary()
    folder = Path(tempfile.mkdtemp(prefix="omnisend-moto-"))
    log = folder / "moto_server.log"
    port = _free_port(host)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-H", host, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        endpoint = f"http://{host}:{port}"
        _wait_until_answering(f"{endpoint}/moto-api/", proc, log, start_timeout)
        server = S3Server(endpoint, bucket, f"omnisend_s3_{port}")
        server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)
