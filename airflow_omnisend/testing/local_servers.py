"""Throw-away resources on the local PostgreSQL and Redis servers for a distributed test deployment.

A test run gets a fresh PostgreSQL database (dropped afterwards) and a Redis database number nobody
else uses (flushed afterwards), so runs in parallel, or after a crashed run, never see each other's
metadata or Celery messages. When a server is not reachable, :class:`ServerUnavailableError` says which
and how it was tried, for a ``pytest.skip`` reason. No Airflow import; the drivers are imported lazily.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from typing import TYPE_CHECKING, Any

from airflow_omnisend.testing.local_airflow import LocalAirflowError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ServerUnavailableError", "free_redis_database", "fresh_postgres_database"]

#: key that claims a Redis database number for one test run
REDIS_CLAIM_KEY = "airflow-omnisend:claimed-by"


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
