"""The sample store: deterministic, realistic, a little dirty; CLI and PostgreSQL loading."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections import Counter
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.cli import main
from airflow_omnisend.events.partition import load_timezone
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.testing.sample_store import DIRTY_SHARES, build_sample_store

if TYPE_CHECKING:
    from pathlib import Path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dump(path: Path) -> list[str]:
    return list(sqlite3.connect(path).iterdump())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = build_sample_store(tmp_path / "a.sqlite", 800, 42)
    b = build_sample_store(tmp_path / "b.sqlite", 800, 42)
    c = build_sample_store(tmp_path / "c.sqlite", 800, 43)
    assert _sha(tmp_path / "a.sqlite") == _sha(tmp_path / "b.sqlite")
    assert _dump(tmp_path / "a.sqlite") == _dump(tmp_path / "b.sqlite")
    assert _dump(tmp_path / "a.sqlite") != _dump(tmp_path / "c.sqlite")
    assert a.to_dict() | {"seconds": 0, "target": ""} == b.to_dict() | {"seconds": 0, "target": ""}
    assert c.orders == 800


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[sqlite3.Connection, Any]:
    path = tmp_path_factory.mktemp("sample") / "shop.sqlite"
    summary = build_sample_store(path, 6000, 7, timezone="Europe/Vilnius", start=date(2024, 3, 25), days=7)
    return sqlite3.connect(path), summary


def _all(conn: sqlite3.Connection, sql: str) -> list[Any]:
    return conn.execute(sql).fetchall()


def test_summary_matches_the_tables(store: tuple[sqlite3.Connection, Any]) -> None:
    conn, summary = store
    assert summary.orders == _all(conn, "SELECT count(*) FROM orders")[0][0] == 6000
    assert summary.lines == _all(conn, "SELECT count(*) FROM order_lines")[0][0]
    assert summary.refunds == _all(conn, "SELECT count(*) FROM refunds")[0][0]
    assert summary.refund_lines == _all(conn, "SELECT count(*) FROM refund_lines")[0][0]
    counts = _all(
        conn,
        "SELECT count(*), count(paid_at), count(fulfilled_at), count(canceled_at) FROM orders",
    )[0]
    events = summary.events
    assert (events["placed order"], events["paid for order"], events["order fulfilled"]) == counts[:3]
    assert events["order canceled"] == counts[3]
    assert events["order refunded"] == summary.refunds
    assert summary.to_dict()["total_events"] == sum(events.values())


def test_realistic_shape(store: tuple[sqlite3.Connection, Any]) -> None:
    conn, summary = store
    per_order = Counter(n for (n,) in _all(conn, "SELECT count(*) FROM order_lines GROUP BY order_id"))
    assert set(per_order) == {1, 2, 3, 4, 5, 6}
    # every share within sensible bounds
    paid = summary.events["paid for order"] / summary.orders
    fulfilled = summary.events["order fulfilled"] / summary.orders
    canceled = summary.events["order canceled"] / summary.orders
    assert 0.8 < paid < 0.95
    assert 0.55 < fulfilled < 0.8
    assert 0.02 < canceled < 0.08
    assert summary.refunds > 0
    assert summary.refund_lines >= summary.refunds
    assert _all(
        conn, "SELECT count(*) FROM orders WHERE tracking_code IS NULL AND fulfilled_at IS NOT NULL"
    ) == [(0,)]
    assert _all(
        conn, "SELECT count(*) FROM orders WHERE cancel_reason IS NULL AND canceled_at IS NOT NULL"
    ) == [(0,)]
    assert _all(
        conn, "SELECT count(*) FROM orders WHERE fulfilled_at IS NOT NULL AND canceled_at IS NOT NULL"
    ) == [(0,)]
    names = {first for (first,) in _all(conn, "SELECT first_name FROM orders")}
    assert {"Žydrūnas", "Šarūnas", "芳", "花子"} <= names
    assert _all(conn, "SELECT count(*) FROM orders WHERE email IS NOT NULL AND email GLOB '*[^ -~]*'") == [
        (0,)
    ]


def test_times_are_instants_with_offsets_and_later_steps_come_later(
    store: tuple[sqlite3.Connection, Any],
) -> None:
    conn, summary = store
    tz = load_timezone("Europe/Vilnius")
    rows = _all(conn, "SELECT created_at, paid_at, fulfilled_at, canceled_at FROM orders")
    refunds = _all(
        conn, "SELECT r.created_at, o.paid_at, o.fulfilled_at FROM refunds r JOIN orders o USING (order_id)"
    )
    suffixes: Counter[str] = Counter()
    precision: Counter[int] = Counter()
    crossing = 0
    for created, *later in rows:
        suffixes["Z" if created.endswith("Z") else created[-6:]] += 1
        precision[len(created.split(".")[1].rstrip("Z").split("+")[0]) if "." in created else 0] += 1
        start = datetime.fromisoformat(created)
        for value in later:
            if value is not None:
                assert datetime.fromisoformat(value) > start
                crossing += datetime.fromisoformat(value).astimezone(tz).date() != start.astimezone(tz).date()
    assert set(suffixes) == {"Z", "+02:00", "+03:00"}  # UTC and both Vilnius offsets (DST on 2024-03-31)
    assert set(precision) == {0, 3, 6}
    assert crossing > summary.orders / 10
    for refunded, paid, fulfilled in refunds:
        assert paid is not None
        assert datetime.fromisoformat(refunded) > datetime.fromisoformat(fulfilled or paid)
    first_days = {datetime.fromisoformat(c).astimezone(tz).date() for (c, *_rest) in rows}
    assert min(first_days) == date(2024, 3, 25)
    assert max(first_days) == date(2024, 3, 31)
    assert summary.first_event_day == date(2024, 3, 25)
    assert summary.last_event_day > date(2024, 4, 1)


def test_dirty_share(store: tuple[sqlite3.Connection, Any]) -> None:
    conn, summary = store
    no_contact = _all(conn, "SELECT count(*) FROM orders WHERE email IS NULL AND phone IS NULL")[0][0]
    bad_currency = _all(conn, "SELECT count(*) FROM orders WHERE currency NOT IN ('EUR', 'USD')")[0][0]
    negative = _all(conn, "SELECT count(DISTINCT order_id) FROM order_lines WHERE unit_price < 0")[0][0]
    assert summary.dirty == {
        "no_contact": no_contact,
        "bad_currency": bad_currency,
        "negative_price": negative,
    }
    for kind, share in DIRTY_SHARES.items():
        assert 0.3 * share * summary.orders <= summary.dirty[kind] <= 2.5 * share * summary.orders, kind
    assert sum(summary.dirty.values()) < 0.02 * summary.orders


def test_cli_writes_a_store_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.sqlite"
    args = [
        "sample-store",
        "--db",
        str(db),
        "--orders",
        "120",
        "--seed",
        "5",
        "--timezone",
        "America/New_York",
        "--start",
        "2024-03-08",
        "--days",
        "4",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "wrote 120 orders" in out
    assert "America/New_York" in out
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    digest = _sha(db)
    assert main([*args, "--replace"]) == 0
    assert _sha(db) == digest
    assert (
        build_sample_store(tmp_path / "api.sqlite", 120, 5, "America/New_York", "2024-03-08", 4).orders == 120
    )
    assert _sha(tmp_path / "api.sqlite") == digest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": 0}, "orders must be a positive number"),
        ({"days": 0}, "days must be a positive number"),
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"start": "2024-13-01"}, "partition day"),
        ({"dialect": "oracle"}, "dialect"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"orders": 10, "seed": 1, **kwargs}
    with pytest.raises(OmnisendConfigError, match=message):
        build_sample_store(tmp_path / "x.sqlite", **settings)
    assert not (tmp_path / "x.sqlite").exists()


def test_cli_reports_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "sample-store",
            "--db",
            str(tmp_path / "x.sqlite"),
            "--orders",
            "5",
            "--seed",
            "1",
            "--timezone",
            "Nowhere/Land",
        ]
    )
    assert code == 2
    assert "timezone" in capsys.readouterr().err


@pytest.mark.postgres
def test_loads_the_same_data_into_postgres(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database 'test', user postgres) is not reachable: {exc}")
    schema = f"omnisend_sample_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.commit()
    try:
        pg = build_sample_store(conn, 300, 9, dialect="postgres")
        lite = build_sample_store(tmp_path / "shop.sqlite", 300, 9)
        assert pg.to_dict() | {"seconds": 0, "target": ""} == lite.to_dict() | {"seconds": 0, "target": ""}
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'orders'",
                (schema,),
            ).fetchall()
        )
        assert types["created_at"] == "timestamp with time zone"
        lite_conn = sqlite3.connect(tmp_path / "shop.sqlite")
        for column in ("created_at", "paid_at", "fulfilled_at", "canceled_at"):
            pg_times = [
                r[0] for r in conn.execute(f"SELECT {column} FROM orders ORDER BY order_id").fetchall()
            ]
            lite_times = [
                None if r[0] is None else datetime.fromisoformat(r[0])
                for r in lite_conn.execute(f"SELECT {column} FROM orders ORDER BY order_id")
            ]
            assert pg_times == lite_times
    finally:
        conn.rollback()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.commit()
        conn.close()
