"""Fixtures of the source tests: empty shops on SQLite and PostgreSQL (see shops.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from shops import Shop, create_tables, new_schema, pg_connect, sqlite_shop_at

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def pg_schema() -> Iterator[tuple[Any, str]]:
    """(connection with search_path set to a fresh schema, schema name); the schema is dropped after."""
    conn = pg_connect()
    schema = new_schema(conn)
    try:
        yield conn, schema
    finally:
        conn.rollback()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.commit()
        conn.close()


@pytest.fixture
def sqlite_shop(tmp_path: Path) -> Iterator[Shop]:
    shop = sqlite_shop_at(tmp_path)
    yield shop
    shop.conn.close()


@pytest.fixture
def pg_shop(pg_schema: tuple[Any, str]) -> Shop:
    conn, schema = pg_schema
    create_tables(conn, "postgres")
    return Shop(conn, "postgres", schema=schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """An empty shop on each database."""
    if request.param == "sqlite":
        created = sqlite_shop_at(tmp_path)
        yield created
        created.conn.close()
    else:
        yield request.getfixturevalue("pg_shop")
