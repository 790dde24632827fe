"""The stores file: every validation error names the entry, the field and the fix; good entries survive."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.stores import (
    ALLOWED_KEYS,
    DAILY,
    STORES_ENV,
    StoreConfig,
    load_stores,
    resolve_stores_path,
)

if TYPE_CHECKING:
    from airflow_omnisend.stores import StoreEntry, StoresFile

REPO_ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
  - store_id: good
    omnisend_conn_id: omnisend_good
    source_conn_id: shop_good
    timezone: America/New_York
    start_date: "2024-03-01"
"""
FIVE_QUERIES = {k: f"SELECT 1 -- {k}" for k in ("placed", "paid", "fulfilled", "canceled", "refunded")}


def write(tmp_path: Path, body: str, name: str = "stores.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def load_entries(tmp_path: Path, *entries: str) -> StoresFile:
    return load_stores(write(tmp_path, "stores:\n" + "".join(entries)))


def entry(**fields: object) -> str:
    """One YAML entry: the good entry's fields, overridden (None drops a field)."""
    base: dict[str, object] = {
        "store_id": "shop",
        "omnisend_conn_id": "omnisend_shop",
        "source_conn_id": "shop_db",
        "timezone": "Europe/Vilnius",
        "start_date": '"2024-03-04"',
    }
    base.update(fields)
    lines = [f"{k}: {v}" for k, v in base.items() if v is not None]
    return "  - " + "\n    ".join(lines) + "\n"


def only_bad(stores: StoresFile) -> StoreEntry:
    (bad,) = stores.bad_entries
    return bad


# -- the good path --------------------------------------------------------------------------------------


def test_demo_stores_file_loads_with_defaults() -> None:
    stores = load_stores(REPO_ROOT / "dags" / "stores.yaml")
    (demo,) = stores.stores
    # the demo shop's seven days, and a reject ratio that lets its deliberate dirty rows through
    assert demo == StoreConfig(
        store_id="demo",
        omnisend_conn_id="omnisend_demo",
        source_conn_id="shop_demo",
        timezone="Europe/Vilnius",
        start_date=date(2024, 3, 4),
        end_date=date(2024, 3, 10),
        max_reject_ratio=0.05,
    )
    assert demo.dag_id == "omnisend_orders__demo"
    assert demo.pool == "omnisend_demo"
    assert demo.events == EVENT_NAMES
    assert demo.schedule == DAILY
    assert (demo.max_active_runs, demo.max_reject_ratio, demo.retries, demo.retry_delay_seconds) == (
        4,
        0.05,
        3,
        60,
    )
    assert demo.staging is None
    assert demo.queries == ()


def test_every_optional_key(tmp_path: Path) -> None:
    queries = "".join(f'\n      {k}: "{v}"' for k, v in FIVE_QUERIES.items())
    stores = load_entries(
        tmp_path,
        entry(
            end_date="2024-04-01",  # unquoted: YAML reads a date
            events='["order refunded", "placed order"]',
            schedule="null",
            pool="brand_pool",
            max_active_runs=2,
            max_reject_ratio=0,
            staging="s3://aws_conn@bucket/prefix",
            queries=queries,
            retries=0,
            retry_delay_seconds=5,
        ),
    )
    (store,) = stores.stores
    assert store.end_date == date(2024, 4, 1)
    assert store.events == ("placed order", "order refunded")  # lifecycle order, whatever the file's
    assert store.schedule is None
    assert store.pool == "brand_pool"
    assert (store.max_active_runs, store.max_reject_ratio, store.retries, store.retry_delay_seconds) == (
        2,
        0.0,
        0,
        5,
    )
    assert store.staging == "s3://aws_conn@bucket/prefix"
    assert store.queries_dict == FIVE_QUERIES


def test_file_source_instead_of_sql(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, entry(source_conn_id=None, source_path="/data/orders.ndjson"))
    (store,) = stores.stores
    assert store.source_conn_id is None
    assert store.source_path == "/data/orders.ndjson"


def test_env_names_the_file_and_argument_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = write(tmp_path, "stores:\n" + GOOD, "env.yaml")
    default = tmp_path / "default.yaml"
    monkeypatch.setenv(STORES_ENV, str(from_env))
    assert resolve_stores_path(None, default) == from_env
    assert resolve_stores_path(tmp_path / "explicit.yaml", default) == tmp_path / "explicit.yaml"
    monkeypatch.delenv(STORES_ENV)
    assert resolve_stores_path(None, default) == default
    with pytest.raises(OmnisendConfigError, match=STORES_ENV):
        resolve_stores_path(None, None)


def test_empty_list_is_no_stores(tmp_path: Path) -> None:
    assert load_stores(write(tmp_path, "stores: []\n")).entries == ()
    assert load_stores(write(tmp_path, "stores:\n")).entries == ()


def test_loading_imports_no_airflow(tmp_path: Path) -> None:
    path = write(tmp_path, "stores:\n" + GOOD)
    code = (
        "import sys; from airflow_omnisend.stores import load_stores; "
        f"assert load_stores({str(path)!r}).stores; "
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- one bad entry: named, with the field and the fix; the good entry survives -----------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"colour": "blue"},
            ["unknown key 'colour'", "allowed keys: " + ", ".join(ALLOWED_KEYS)],
            id="unknown-key",
        ),
        pytest.param(
            {"timezone": "Europe/Vilnus"},
            ["field 'timezone'", "'Europe/Vilnus'", "Europe/Vilnius"],
            id="bad-timezone",
        ),
        pytest.param({"timezone": None}, ["field 'timezone' is missing", "add it"], id="missing-timezone"),
        pytest.param(
            {"omnisend_conn_id": None}, ["field 'omnisend_conn_id' is missing"], id="missing-omnisend-conn"
        ),
        pytest.param(
            {"omnisend_conn_id": '""'},
            ["field 'omnisend_conn_id'", "is missing", "connection id"],
            id="blank-omnisend-conn",
        ),
        pytest.param(
            {"omnisend_conn_id": '"has space"'},
            ["field 'omnisend_conn_id'", "not an Airflow connection id"],
            id="bad-conn-id",
        ),
        pytest.param(
            {"source_conn_id": None},
            ["field 'source_conn_id' is missing", "source_path"],
            id="missing-source",
        ),
        pytest.param(
            {"source_path": "/data/x.ndjson"},
            ["'source_conn_id' and 'source_path' are both set"],
            id="two-sources",
        ),
        pytest.param(
            {"source_conn_id": None, "source_path": "orders.ndjson"},
            ["field 'source_path'", "relative path"],
            id="relative-source-path",
        ),
        pytest.param({"start_date": None}, ["field 'start_date' is missing"], id="missing-start"),
        pytest.param(
            {"start_date": '"2024-02-30"'},
            ["field 'start_date'", "not a real calendar date"],
            id="impossible-start",
        ),
        pytest.param(
            {"start_date": '"04/03/2024"'}, ["field 'start_date'", "YYYY-MM-DD"], id="start-not-iso"
        ),
        pytest.param(
            {"start_date": "2024-03-04T10:00:00"}, ["field 'start_date'", "YYYY-MM-DD"], id="start-with-time"
        ),
        pytest.param(
            {"end_date": '"2024-03-01"'},
            ["end_date 2024-03-01 is before start_date 2024-03-04"],
            id="end-before-start",
        ),
        pytest.param(
            {"events": '["placed order", "order shipped"]'},
            ["field 'events'", "'order shipped'", "paid for order"],
            id="unknown-event",
        ),
        pytest.param(
            {"events": '"placed order"'}, ["field 'events'", "non-empty list"], id="events-not-list"
        ),
        pytest.param({"events": "[]"}, ["field 'events'", "non-empty list"], id="events-empty"),
        pytest.param(
            {"events": '["placed order", "placed order"]'},
            ["field 'events'", "more than once"],
            id="events-duplicate",
        ),
        pytest.param(
            {"schedule": '"@hourly"'},
            ["field 'schedule'", "'@daily'", "null", "period: day, week or month"],
            id="bad-schedule",
        ),
        pytest.param({"pool": '"my pool"'}, ["field 'pool'", "pool name"], id="bad-pool"),
        pytest.param(
            {"max_active_runs": 0}, ["field 'max_active_runs'", "from 1 to 64"], id="max-active-runs-zero"
        ),
        pytest.param(
            {"max_active_runs": "true"},
            ["field 'max_active_runs'", "whole number"],
            id="max-active-runs-bool",
        ),
        pytest.param(
            {"max_reject_ratio": 1.5}, ["field 'max_reject_ratio'", "from 0 to 1"], id="ratio-above-one"
        ),
        pytest.param({"max_reject_ratio": '"1%"'}, ["field 'max_reject_ratio'", "0.01"], id="ratio-text"),
        pytest.param(
            {"staging": "relative/dir"},
            ["field 'staging'", "relative path", "absolute"],
            id="relative-staging",
        ),
        pytest.param(
            {"queries": "{placed: 'SELECT 1'}"},
            ["field 'queries'", "lacks", "SqlQueries.default"],
            id="queries-partial",
        ),
        pytest.param(
            {"queries": "{shipped: 'SELECT 1'}"},
            ["field 'queries'", "unknown kind(s) ['shipped']"],
            id="queries-unknown-kind",
        ),
        pytest.param(
            {"queries": "'SELECT 1'"}, ["field 'queries'", "mapping of event kind"], id="queries-not-mapping"
        ),
        pytest.param({"retries": -1}, ["field 'retries'", "from 0 to 10"], id="negative-retries"),
        pytest.param({"retries": 10**20}, ["field 'retries'", "from 0 to 10"], id="huge-retries"),
        pytest.param({"retries": "1e20"}, ["field 'retries'", "from 0 to 10"], id="retries-1e20"),
        pytest.param({"retries": "1.0e+20"}, ["field 'retries'", "from 0 to 10"], id="retries-float-1e20"),
        pytest.param(
            {"retry_delay_seconds": 10**30},
            ["field 'retry_delay_seconds'", "from 0 to 86400"],
            id="huge-delay",
        ),
        pytest.param(
            {"max_active_runs": 10**6}, ["field 'max_active_runs'", "from 1 to 64"], id="huge-active-runs"
        ),
        pytest.param(
            {"start_date": "2024-02-30"}, ["field 'start_date'", "real calendar date"], id="start-feb-30"
        ),
        pytest.param(
            {"end_date": "2023-13-01"}, ["field 'end_date'", "real calendar date"], id="end-month-13"
        ),
        pytest.param({"timezone": "localtime"}, ["field 'timezone'", "IANA"], id="tz-localtime"),
        pytest.param({"timezone": "posixrules"}, ["field 'timezone'", "IANA"], id="tz-posixrules"),
        pytest.param({"timezone": "Factory"}, ["field 'timezone'", "IANA"], id="tz-factory"),
        pytest.param(
            {"retry_delay_seconds": 1.5},
            ["field 'retry_delay_seconds'", "whole number"],
            id="fractional-delay",
        ),
    ],
)
def test_bad_entry_names_store_field_and_fix(
    tmp_path: Path, fields: dict[str, object], expected: list[str]
) -> None:
    stores = load_entries(tmp_path, GOOD, entry(**fields))
    assert [s.store_id for s in stores.stores] == ["good"]
    bad = only_bad(stores)
    assert (bad.index, bad.store_id, bad.config) == (2, "shop", None)
    text = bad.describe()
    assert text.startswith("entry 2 (store 'shop'): ")
    for part in expected:
        assert part in text, text
    problems = stores.describe_problems()
    assert str(stores.path) in problems
    assert "omnisend_orders__shop" in problems
    assert text in problems


def test_queries_with_a_file_source_are_refused(tmp_path: Path) -> None:
    queries = "{" + ", ".join(f"{k}: '{v}'" for k, v in FIVE_QUERIES.items()) + "}"
    stores = load_entries(tmp_path, entry(source_conn_id=None, source_path="/data/o.ndjson", queries=queries))
    assert "queries only apply to a SQL source" in only_bad(stores).describe()


def test_every_problem_of_an_entry_is_listed(tmp_path: Path) -> None:
    stores = load_entries(
        tmp_path, entry(timezone="Mars/Olympus", start_date="nope", colour="red", pool="a b")
    )
    errors = only_bad(stores).errors
    assert len(errors) == 4
    assert {e.split(" ")[0] + " " + e.split(" ")[1] for e in errors} == {
        "field 'timezone':",
        "field 'start_date':",
        "unknown key",
        "field 'pool':",
    }


@pytest.mark.parametrize(
    ("store_id", "why"),
    [
        ("Shop-EU", "[a-z0-9_]+"),
        ('"shop:eu"', "[a-z0-9_]+"),
        ("abcdefghij" * 11, "at most 100"),
        ('""', "[a-z0-9_]+"),
    ],
)
def test_unusable_store_id_gets_a_placeholder_dag_id(tmp_path: Path, store_id: str, why: str) -> None:
    stores = load_entries(tmp_path, GOOD, entry(store_id=store_id))
    bad = only_bad(stores)
    assert bad.store_id is None
    assert bad.dag_id == "omnisend_orders__entry_2"
    assert why in bad.describe()
    assert "field 'store_id'" in bad.describe()


def test_missing_store_id(tmp_path: Path) -> None:
    bad = only_bad(load_entries(tmp_path, entry(store_id=None)))
    assert "field 'store_id' is missing" in bad.describe()
    assert bad.label == "entry 1 (no store_id)"


def test_duplicate_store_id_keeps_the_first(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, GOOD, entry(store_id="good"))
    assert [s.store_id for s in stores.stores] == ["good"]
    bad = only_bad(stores)
    assert bad.index == 2
    assert bad.dag_id == "omnisend_orders__entry_2"
    assert "'good' is already used by entry 1" in bad.describe()
    assert "unique" in bad.describe()


def test_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, GOOD, "  - just a string\n")
    bad = only_bad(stores)
    assert "not a mapping" in bad.describe()
    assert bad.dag_id == "omnisend_orders__entry_2"


def test_several_bad_entries_all_in_one_message(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, entry(store_id="a", timezone="Nowhere/City"), GOOD, entry(store_id="B"))
    assert [s.store_id for s in stores.stores] == ["good"]
    text = stores.describe_problems()
    assert "2 bad entries" in text
    assert "omnisend_orders__a, omnisend_orders__entry_3" in text
    assert text.index("entry 1 (store 'a')") < text.index("entry 3 (store_id 'B', not usable)")


# -- the file as a whole ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("stores: [\n", "not valid YAML"),
        ("- store_id: x\n", "'stores' list at the top"),
        ("stores:\n" + GOOD + "extra: 1\n", "unknown top-level key(s) ['extra']"),
        ("stores: {store_id: x}\n", "'stores' must be a list"),
        ("stores:\n  - store_id: a\n    store_id: b\n", "key 'store_id' appears twice"),
    ],
)
def test_unusable_file(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(OmnisendConfigError) as info:
        load_stores(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OmnisendConfigError, match=r"does not exist; create it .* AIRFLOW_OMNISEND_STORES"):
        load_stores(tmp_path / "nope.yaml")


def test_store_config_validates_when_built_in_python() -> None:
    with pytest.raises(OmnisendConfigError, match="timezone 'Mars/Base'"):
        StoreConfig(
            store_id="x",
            omnisend_conn_id="o",
            timezone="Mars/Base",
            start_date=date(2024, 1, 1),
            source_conn_id="s",
        )
    with pytest.raises(OmnisendConfigError, match="source_conn_id is missing"):
        StoreConfig(store_id="x", omnisend_conn_id="o", timezone="UTC", start_date=date(2024, 1, 1))
    store = StoreConfig(
        store_id="x",
        omnisend_conn_id="o",
        timezone="UTC",
        start_date="2024-01-01",
        source_conn_id="s",  # type: ignore[arg-type]
    )
    assert store.start_date == date(2024, 1, 1)


def test_yaml_comment_example_in_module_docstring_is_valid(tmp_path: Path) -> None:
    import airflow_omnisend.stores as module

    doc = module.__doc__ or ""
    block = doc[doc.index("stores:") : doc.index("The DAG file")]
    stores = load_stores(write(tmp_path, textwrap.dedent("    " + block)))
    assert [s.store_id for s in stores.stores] == ["demo"]


def test_paramstyle_overrides_the_sql_drivers_own() -> None:
    from airflow_omnisend.stores import StoreConfig

    base: dict[str, Any] = {
        "store_id": "shop",
        "omnisend_conn_id": "omnisend_shop",
        "timezone": "UTC",
        "start_date": "2024-03-04",
    }
    assert StoreConfig(**base, source_conn_id="shop_db").paramstyle is None  # the driver's own
    assert StoreConfig(**base, source_conn_id="shop_db", paramstyle="format").paramstyle == "format"
    with pytest.raises(OmnisendConfigError, match="paramstyle must be one of named, qmark, pyformat"):
        StoreConfig(**base, source_conn_id="shop_db", paramstyle="%s")
    with pytest.raises(OmnisendConfigError, match="paramstyle only applies to a SQL source"):
        StoreConfig(**base, source_path="/data/events.ndjson", paramstyle="qmark")


# -- hostile files: nothing one file says takes the processor down or floods the banner (issue 14) --------


def test_alias_bomb_is_refused_fast_without_expanding(tmp_path: Path) -> None:
    levels = ["a0: &a0 [" + ",".join(["x" * 10] * 10) + "]"]
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(levels) + "\nstores:\n" + GOOD)
    with pytest.raises(OmnisendConfigError) as caught:
        load_stores(path)
    message = str(caught.value)
    assert "anchors and aliases" in message
    assert "line 1" in message
    assert len(message) < 400


def test_alias_inside_an_entry_is_refused(tmp_path: Path) -> None:
    body = "stores:\n  - &base\n    store_id: a\n  - <<: *base\n    store_id: b\n"
    with pytest.raises(OmnisendConfigError, match="anchors and aliases"):
        load_stores(write(tmp_path, body))


def test_unquoted_impossible_date_names_entry_and_field(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, GOOD, entry(start_date="2024-02-30"))
    assert [s.store_id for s in stores.stores] == ["good"]
    text = only_bad(stores).describe()
    assert text.startswith("entry 2 (store 'shop'): field 'start_date': ")
    assert "2024-02-30" in text
    assert "real calendar date" in text


def test_unquoted_good_date_still_loads(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, entry(start_date="2024-03-04", end_date="2024-03-09"))
    assert stores.stores[0].start_date == date(2024, 3, 4)
    assert stores.stores[0].end_date == date(2024, 3, 9)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "stores:\n" + GOOD + "#" + "x" * 1_000_001 + "\n")
    with pytest.raises(OmnisendConfigError, match="larger than 1000000 bytes"):
        load_stores(path)


def test_huge_value_is_cut_in_the_message(tmp_path: Path) -> None:
    stores = load_entries(tmp_path, GOOD, entry(timezone="X" * 100_000, retries=10**4000))
    text = only_bad(stores).describe()
    assert "field 'timezone'" in text
    assert "field 'retries'" in text
    assert "from 0 to 10" in text
    assert len(text) < 1200


def test_integer_too_long_for_python_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "stores:\n" + entry(retries="9" * 5000))
    with pytest.raises(OmnisendConfigError, match=r"stores file .* is not valid YAML") as caught:
        load_stores(path)
    assert len(str(caught.value)) < 600


# -- periods and staging retention --------------------------------------------------------------------------


def test_period_and_retention_default_to_days_and_deleting(tmp_path: Path) -> None:
    (store,) = load_entries(tmp_path, entry()).stores
    assert store.period == "day"
    assert store.keep_staged_events is False


def test_a_month_store(tmp_path: Path) -> None:
    stores = load_entries(
        tmp_path,
        entry(period="month", start_date='"2023-01-01"', end_date="2024-12-31", keep_staged_events="true"),
    )
    (store,) = stores.stores
    assert (store.period, store.keep_staged_events) == ("month", True)
    assert store.dag_id == "omnisend_orders__shop"  # one identity whatever the period
    assert store.pool == "omnisend_shop"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"period": "monthly"}, "day (default), week (ISO weeks, Monday to Sunday), month"),
        ({"period": "month"}, "start_date 2024-03-04 is not the first day of a month"),
        ({"period": "week", "start_date": '"2024-03-06"'}, "use 2024-03-04 or 2024-03-11"),
        (
            {"period": "month", "start_date": '"2024-03-01"', "end_date": '"2024-04-15"'},
            "use 2024-04-30 or 2024-03-31",
        ),
        ({"keep_staged_events": '"no"'}, "keep_staged_events must be true or false"),
    ],
)
def test_bad_period_settings_name_the_fix(tmp_path: Path, fields: dict[str, object], expected: str) -> None:
    bad = only_bad(load_entries(tmp_path, entry(**fields)))
    assert expected in bad.describe(), bad.describe()
