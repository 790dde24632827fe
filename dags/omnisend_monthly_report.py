"""Example downstream DAGs: a job that runs once a store's month is fully imported into Omnisend.

One DAG per store of the stores file, ``omnisend_monthly__<store_id>``, scheduled on the store's asset
``omnisend://<store_id>/orders`` (emitted by each successful, non-dry run's ``report`` task, with the
run's period as its partition key) through a ``PartitionedAssetTimetable``:

* a ``day`` store: ``RollupMapper(StartOfMonthMapper, MonthWindow)`` - the run for ``YYYY-MM`` starts
  when every day of that month has been imported (a month the store's ``start_date`` cuts never
  completes);
* a ``month`` store: ``IdentityMapper`` - one run per imported month;
* ``week`` stores get none: ISO weeks straddle months.

Copy it and replace ``summarise_month`` with your own monthly job (reports, exports, a CRM sync).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    IdentityMapper,
    MonthWindow,
    PartitionedAssetTimetable,
    RollupMapper,
    StartOfMonthMapper,
    task,
)

from airflow_omnisend.assets import store_asset
from airflow_omnisend.events.partition import PartitionPeriod
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.stores import StoreConfig, load_stores

log = logging.getLogger(__name__)


def monthly_timetable(store: StoreConfig) -> PartitionedAssetTimetable | None:
    """One run per fully imported month of ``store`` (module docstring); ``None`` for a week store."""
    if store.period is PartitionPeriod.DAY:
        mapper: Any = RollupMapper(
            upstream_mapper=StartOfMonthMapper(input_format=PartitionPeriod.DAY.key_format),
            window=MonthWindow(),
        )
    elif store.period is PartitionPeriod.MONTH:
        mapper = IdentityMapper()
    else:
        return None
    return PartitionedAssetTimetable(assets=store_asset(store.store_id), default_partition_mapper=mapper)


@task
def summarise_month(store_id: str, **context: Any) -> dict[str, Any]:
    """Sum the counts the month's asset events carry (one per imported period)."""
    events = [e for evs in context["triggering_asset_events"].values() for e in evs]
    totals = {
        name: sum(int(e.extra.get(name, 0)) for e in events)
        for name in ("events_extracted", "events_accepted", "events_rejected", "events_dead_lettered")
    }
    log.info(
        "store %s month %s imported (%s periods): %s",
        store_id,
        context["dag_run"].partition_key,
        len(events),
        totals,
    )
    return {"store_id": store_id, "month": context["dag_run"].partition_key, "periods": len(events)} | totals


def build_monthly_dags(stores_path: Path) -> dict[str, DAG]:
    """The downstream DAG of every good store entry with a monthly timetable; none when the stores
    file is unusable (``omnisend_orders.py`` reports that import error, once)."""
    try:
        stores = load_stores(default=stores_path).stores
    except OmnisendConfigError:
        return {}
    dags: dict[str, DAG] = {}
    for store in stores:
        timetable = monthly_timetable(store)
        if timetable is None:
            continue
        with DAG(
            dag_id=f"omnisend_monthly__{store.store_id}",
            schedule=timetable,
            catchup=False,
            tags=["omnisend", "example", f"store:{store.store_id}"],
            doc_md=__doc__,
        ) as dag:
            summarise_month(store.store_id)
        dags[dag.dag_id] = dag
    return dags


globals().update(build_monthly_dags(Path(__file__).with_name("stores.yaml")))
