"""The SQL of the SQL source: parameters for each paramstyle, a window's parameters, query checks."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys

import pytest

from airflow_omnisend.events.partition import PartitionWindow
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.sources.sql_queries import (
    KINDS,
    SqlQueries,
    bind,
    check_dialect,
    detect_dialect,
    driver_paramstyle,
    paramstyle_of,
    window_parameters,
)

TZ = "America/New_York"


def test_bind_rewrites_parameters_for_each_paramstyle() -> None:
    params = {"start": "S", "end": "E", "day": "D"}
    query = "SELECT x::text, '50%' FROM t WHERE a >= :start AND b < :end AND c = :day AND d = :start"
    query += " AND e = :other"
    assert bind(query, params, "named") == (query, {"start": "S", "end": "E", "day": "D"})
    sql, args = bind(query, params, "qmark")
    assert sql.count("?") == 4
    assert "::text" in sql
    assert ":other" in sql
    assert args == ["S", "E", "D", "S"]
    sql, args = bind(query, params, "pyformat")
    assert "%(start)s" in sql
    assert "'50%%'" in sql
    assert args == {"start": "S", "end": "E", "day": "D"}
    sql, args = bind(query, params, "format")
    assert sql.count("%s") == 4
    assert args == ["S", "E", "D", "S"]
    sql, args = bind(query, params, "numeric")
    assert ":1" in sql
    assert ":4" in sql
    assert args == ["S", "E", "D", "S"]
    with pytest.raises(OmnisendConfigError, match="paramstyle"):
        bind(query, params, "dollar")


def test_window_parameters() -> None:
    window = PartitionWindow.for_day("2024-03-10", TZ)
    lite = window_parameters(window, "sqlite")
    assert lite["start"] == "2024-03-10T05:00:00Z"
    assert lite["end"] == "2024-03-11T04:00:00Z"
    assert (lite["scan_start"], lite["scan_end"]) == ("2024-03-09", "2024-03-13")
    assert (lite["day"], lite["next_day"]) == ("2024-03-10", "2024-03-11")
    assert lite["julian_start"] < 2460379.7083333 < lite["julian_end"]
    pg = window_parameters(window, "postgres")
    assert pg["start"] == window.start_utc
    assert pg["end"] == window.end_utc


def test_query_configuration_errors() -> None:
    with pytest.raises(OmnisendConfigError, match=r"SqlQueries\.paid must be a non-empty SQL string"):
        dataclasses.replace(SqlQueries.default("sqlite"), paid=" ")
    with pytest.raises(OmnisendConfigError, match="no default queries for dialect 'generic'"):
        SqlQueries.default("generic")


def test_default_queries_filter_on_the_window_and_sweep_what_has_no_date() -> None:
    for dialect, window_parameter in (("sqlite", ":scan_start"), ("postgres", ":start")):
        queries = SqlQueries.default(dialect)
        for kind in KINDS:
            query = getattr(queries, kind)
            assert window_parameter in query
            assert "lines_json" in query
        assert queries.unplaceable is not None
        for event_name, _time_column in KINDS.values():
            assert f"'{event_name}'" in queries.unplaceable


def test_detect_dialect_from_the_driver() -> None:
    assert detect_dialect(sqlite3.connect(":memory:")) == "sqlite"
    assert detect_dialect(object()) == "generic"


def test_paramstyle_and_dialect_checks() -> None:
    assert paramstyle_of(sqlite3.connect(":memory:"), "sqlite") == "named"
    assert paramstyle_of(object(), "postgres") == "pyformat"
    assert paramstyle_of(object(), "generic") == "qmark"  # a driver that does not say
    assert check_dialect("generic") == "generic"
    with pytest.raises(OmnisendConfigError, match="dialect must be one of sqlite, postgres, mysql, generic"):
        check_dialect("oracle")


# -- the driver's own paramstyle --------------------------------------------------------------------------


def test_paramstyle_comes_from_the_nearest_module_that_declares_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    top, middle, leaf = (types.ModuleType(n) for n in ("fakedb", "fakedb.api", "fakedb.api.conn"))
    top.paramstyle = "qmark"  # type: ignore[attr-defined]
    middle.paramstyle = "numeric"  # type: ignore[attr-defined]
    for module in (top, middle, leaf):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    connection = type("Connection", (), {"__module__": "fakedb.api.conn"})()
    assert detect_dialect(connection) == "generic"
    assert driver_paramstyle(connection) == "numeric"  # fakedb.api, not the top-level fakedb
    assert paramstyle_of(connection, "generic") == "numeric"
    assert paramstyle_of(connection, "generic", "named") == "named"  # the stores file's override wins
    del middle.paramstyle
    assert paramstyle_of(connection, "generic") == "qmark"
    del top.paramstyle
    assert driver_paramstyle(connection) is None
    assert paramstyle_of(connection, "generic") == "qmark"  # PEP 249's most common when none is declared
    with pytest.raises(OmnisendConfigError, match="paramstyle must be one of named, qmark"):
        paramstyle_of(connection, "generic", "%s")


@pytest.mark.parametrize(
    ("module", "connection_class", "dialect"),
    [
        ("snowflake.connector", "SnowflakeConnection", "generic"),
        ("mysql.connector", "MySQLConnection", "mysql"),
        ("google.cloud.bigquery.dbapi", "Connection", "generic"),
        ("pymysql", "Connection", "mysql"),
        ("MySQLdb", "Connection", "mysql"),
    ],
)
def test_each_listed_driver_binds_in_its_real_paramstyle(
    module: str, connection_class: str, dialect: str
) -> None:
    """The driver's real connection class (never connected: no server is needed) and its real module."""
    driver = pytest.importorskip(module, reason=f"{module} is not installed here")
    cls = getattr(driver, connection_class)
    connection = cls.__new__(cls)
    assert type(connection).__module__ != module  # the class lives in a submodule: the walk matters
    assert detect_dialect(connection) == dialect
    assert paramstyle_of(connection, dialect) == driver.paramstyle
    assert driver.paramstyle in ("pyformat", "format")  # all of these, never the qmark fallback
    sql, _args = bind("SELECT 1 WHERE a >= :start", {"start": 1}, paramstyle_of(connection, dialect))
    assert sql == (
        "SELECT 1 WHERE a >= %(start)s" if driver.paramstyle == "pyformat" else "SELECT 1 WHERE a >= %s"
    )
