"""Shops for the source tests (helpers; the fixtures are in conftest.py): an empty reference-schema
database on SQLite and on PostgreSQL.

PostgreSQL is the local server (127.0.0.1:5432, user postgres, database ``test``); each test gets its
own schema, dropped afterwards, so tests never see each other's rows. Without the server, the
PostgreSQL variants skip and say why.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.testing.sample_store import schema_ddl

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


def _statements(ddl: str) -> list[str]:
    body = "\n".join(line.split("--", 1)[0] for line in ddl.splitlines())
    return [s.strip() for s in body.split(";") if s.strip()]


@dataclass
class Shop:
    """An empty shop database (reference schema) and how to fill it."""

    conn: Any
    dialect: str
    path: Path | None = None
    schema: str | None = None

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
        cur = self.conn.cursor()
        cur.executemany(sql, [tuple(row.get(c) for c in columns) for row in rows])
        cur.close()
        self.conn.commit()

    def execute(self, sql: str) -> None:
        cur = self.conn.cursor()
        cur.execute(sql)
        cur.close()
        self.conn.commit()


def pg_connect() -> Any:
    """A psycopg connection to the local server, or a skip saying why there is none."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dev dependency
        pytest.skip("PostgreSQL tests need psycopg")
    try:
        return psycopg.connect(PG_DSN)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database 'test', user postgres) is not reachable: {exc}")


def new_schema(conn: Any) -> str:
    schema = f"omnisend_src_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.commit()
    return schema


def sqlite_shop_at(tmp_path: Path) -> Shop:
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    for statement in _statements(schema_ddl("sqlite")):
        conn.execute(statement)
    conn.commit()
    return Shop(conn, "sqlite", path=path)


def create_tables(conn: Any, dialect: str) -> None:
    for statement in _statements(schema_ddl(dialect)):
        conn.execute(statement)
    conn.commit()


MYSQL_ARGS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 3306,
    "user": "root",
    "password": "",
    "connect_timeout": 3,
}


def mysql_database() -> tuple[Any, str]:
    """(factory of PyMySQL connections to a fresh database on the local MariaDB, its name), or a skip."""
    try:
        import pymysql
    except ImportError:
        pytest.skip("MariaDB/MySQL tests need PyMySQL (pip install pymysql; it is in the dev extra)")
    try:
        admin = pymysql.connect(**MYSQL_ARGS)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB at 127.0.0.1:3306 (user root, empty password) is not reachable: {exc}")
    name = f"omnisend_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    admin.close()

    def connect() -> Any:
        return pymysql.connect(**MYSQL_ARGS, database=name)

    return connect, name


def drop_mysql_database(name: str) -> None:
    import pymysql

    admin = pymysql.connect(**MYSQL_ARGS)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.close()
