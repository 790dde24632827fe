"""The dashboard's FastAPI app, mounted by the plugin on the api-server at ``/omnisend``.

Access goes through Airflow's auth manager: the token is the UI's ``_token`` cookie or an
``Authorization: Bearer`` header (what ``POST /auth/token`` returns); no valid token is a 401 (the
page says to log in), and a user the auth manager does not let read ``omnisend_orders__<store_id>``
(``is_authorized_dag``, GET) gets a 403 for that store, which the all-stores page leaves out.

Where the data comes from is a :class:`Backend`: :class:`AirflowBackend` reads the stores file, the
DagRun and Backfill rows through Airflow's own session, and each store's Omnisend connection only for
its ``brand_budget_per_minute``; tests pass their own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from airflow_omnisend.dashboard import page
from airflow_omnisend.dashboard.data import (
    JsonCache,
    RunRecord,
    StoreSource,
    StoreSummary,
    dead_letter_view,
    file_name,
    is_period,
    redact,
    rejected_view,
    summarize_store,
)
from airflow_omnisend.exceptions import OmnisendError
from airflow_omnisend.stores import dag_id_for

if TYPE_CHECKING:
    from airflow_omnisend.stores import StoreConfig

__all__ = ["AirflowBackend", "Backend", "Refused", "create_app"]

log = logging.getLogger(__name__)
COOKIE = "_token"


class Refused(Exception):
    """A request the dashboard does not answer: ``status`` 401, 403 or 404 and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AuthManager(Protocol):
    """What the dashboard needs of Airflow's auth manager."""

    async def get_user_from_token(self, token: str) -> Any: ...

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = ..., details: Any = ...
    ) -> bool: ...

    def get_url_login(self, **kwargs: Any) -> str: ...


class Backend(Protocol):
    """Where the dashboard reads from."""

    def auth_manager(self) -> AuthManager: ...

    def dag_details(self, dag_id: str) -> Any: ...

    def stores(self) -> tuple[list[StoreConfig], list[str]]: ...

    def source(self, store: StoreConfig) -> StoreSource: ...

    def ui_root(self) -> str: ...


# -- Airflow ----------------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _period_of(partition_key: str | None, conf: Any) -> str | None:
    if partition_key:
        return partition_key
    value = conf.get("partition") if isinstance(conf, dict) else None
    return str(value) if value else None


def staging_dir(store: StoreConfig) -> tuple[Path | None, str | None]:
    """``<staging root>/<store_id>`` when the store's root is a folder here, else ``(None, why)``."""
    from airflow_omnisend.staging import StagingRoot  # imports airflow.sdk: api-server side only

    try:
        root = StagingRoot.from_env(store.staging)
    except OmnisendError as err:
        return None, f"the staging root cannot be used ({err})"
    if not root.is_local:
        return None, f"the staging root {root.url} is not a folder on this api-server"
    return Path(urlsplit(root.url).path) / store.store_id, None


@dataclass
class AirflowBackend:
    """Reads the deployment the api-server belongs to."""

    stores_path: str | None = None

    def auth_manager(self) -> AuthManager:
        from airflow.api_fastapi.app import get_auth_manager

        manager: AuthManager = get_auth_manager()
        return manager

    def dag_details(self, dag_id: str) -> Any:
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        return DagDetails(id=dag_id)

    def stores(self) -> tuple[list[StoreConfig], list[str]]:
        from airflow.configuration import conf

        from airflow_omnisend.stores import load_stores

        default = Path(conf.get("core", "dags_folder")) / "stores.yaml"
        try:
            loaded = load_stores(self.stores_path, default=default)
        except OmnisendError as err:
            return [], [f"the stores file cannot be read: {err}"]
        notes = [loaded.describe_problems()] if loaded.bad_entries else []
        return list(loaded.stores), notes

    def source(self, store: StoreConfig) -> StoreSource:
        directory, why = staging_dir(store)
        runs, backfill = self._runs(store.dag_id)
        return StoreSource(
            store_id=store.store_id,
            dag_id=store.dag_id,
            runs=runs,
            staging_dir=directory,
            staging_note=why,
            active_backfill=backfill,
            rate_per_minute=self._rate(store.omnisend_conn_id),
        )

    def _runs(self, dag_id: str) -> tuple[tuple[RunRecord, ...], int | None]:
        from airflow.models.backfill import Backfill
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        columns = (DagRun.run_id, DagRun.state, DagRun.run_type, DagRun.start_date, DagRun.end_date,
                   DagRun.partition_key, DagRun.conf, DagRun.backfill_id)  # fmt: skip
        with create_session() as session:
            rows = session.execute(select(*columns).where(DagRun.dag_id == dag_id)).all()
            active = session.scalar(
                select(Backfill.id)
                .where(Backfill.dag_id == dag_id, Backfill.completed_at.is_(None))
                .order_by(Backfill.id.desc())
                .limit(1)
            )
        runs = []
        for run_id, state, run_type, started, ended, partition_key, conf, backfill_id in rows:
            period = _period_of(partition_key, conf)
            if period:
                runs.append(RunRecord(period, run_id, str(state), str(run_type), _iso(started), _iso(ended),
                                      backfill_id))  # fmt: skip
        return tuple(runs), active

    def _rate(self, conn_id: str) -> int:
        from airflow.models.connection import Connection

        from airflow_omnisend.hooks._brand_budget import DEFAULT_REQUESTS_PER_WINDOW, brand_budget_config
        from airflow_omnisend.hooks._profile import own_extras

        try:
            extras = Connection.get_connection_from_secrets(conn_id).extra_dejson
            return int(brand_budget_config(own_extras(extras)).requests_per_window)
        except Exception:  # a missing or broken connection must not take the page down
            log.info("no brand rate from connection %s; using the default", conn_id)
            return DEFAULT_REQUESTS_PER_WINDOW

    def ui_root(self) -> str:
        from airflow.configuration import conf

        return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


# -- the app ------------------------------------------------------------------------------------------


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None


@dataclass
class Dashboard:
    """The request handling, apart from FastAPI's routing (so each refusal is testable)."""

    backend: Backend
    cache: JsonCache = field(default_factory=JsonCache)

    async def user(self, request: Request) -> Any:
        token = _token(request)
        if not token:
            raise Refused(401, "Not logged in: log in to Airflow, then open this page again.")
        try:
            return await self.backend.auth_manager().get_user_from_token(token)
        except Exception as exc:  # the auth manager's own errors (expired, invalid) all mean: no user
            log.info("dashboard: token refused (%s)", type(exc).__name__)
            raise Refused(401, "Your Airflow session is not valid (expired?): log in again.") from None

    def allowed(self, user: Any, store_id: str) -> bool:
        dag_id = dag_id_for(store_id)
        return bool(
            self.backend.auth_manager().is_authorized_dag(
                method="GET", user=user, details=self.backend.dag_details(dag_id)
            )
        )

    def visible_stores(self, user: Any) -> tuple[list[StoreSummary], list[str]]:
        stores, notes = self.backend.stores()
        shown = [
            summarize_store(self.backend.source(s), self.cache)
            for s in stores
            if self.allowed(user, s.store_id)
        ]
        return shown, notes

    def source(self, user: Any, store_id: str) -> StoreSource:
        stores, _notes = self.backend.stores()
        found = next((s for s in stores if s.store_id == store_id), None)
        if found is None:
            raise Refused(404, f"No store {store_id!r} in the stores file.")
        if not self.allowed(user, store_id):
            raise Refused(403, f"You may not read DAG {dag_id_for(store_id)}, so not store {store_id!r}.")
        return self.backend.source(found)

    def store(self, user: Any, store_id: str) -> StoreSummary:
        return summarize_store(self.source(user, store_id), self.cache)

    def period_dir(self, user: Any, store_id: str, period: str) -> Path:
        """The period's staging folder, after the same checks as the store's page; only a period
        folder name (never a path) is accepted."""
        source = self.source(user, store_id)
        folder = source.staging_dir / period if source.staging_dir is not None else None
        if folder is None or not is_period(period) or not folder.is_dir():
            raise Refused(
                404, f"No staged files of period {period!r} of store {store_id!r} on this api-server."
            )
        return folder


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _login_url(dashboard: Dashboard, request: Request) -> str | None:
    try:
        return dashboard.backend.auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # an auth manager without a login page: the message alone says what to do
        return None


def create_app(backend: Backend | None = None) -> FastAPI:
    """The dashboard app (``backend`` default: :class:`AirflowBackend`)."""
    dashboard = Dashboard(backend or AirflowBackend(os.environ.get("AIRFLOW_OMNISEND_STORES")))
    app = FastAPI(title="Omnisend backfills", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = dashboard

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if "/api/" in request.url.path:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        login = _login_url(dashboard, request) if exc.status == 401 else None
        title = {401: "Log in to Airflow", 403: "Not allowed", 404: "Not found"}.get(exc.status, "Refused")
        return HTMLResponse(page.message_page(title, exc.message, login_url=login), status_code=exc.status)

    _add_pages(app, dashboard)
    _add_files(app, dashboard)
    return app


def _user_dependency(dashboard: Dashboard) -> Any:
    async def current_user(request: Request) -> Any:
        return await dashboard.user(request)

    return Depends(current_user)


def _add_pages(app: FastAPI, dashboard: Dashboard) -> None:
    """The pages and their JSON twins. Plain ``def``: FastAPI runs them in its thread pool, so reading
    the DB and staging never blocks the api-server's event loop."""
    user_dep = _user_dependency(dashboard)

    def urls(request: Request) -> page.Urls:
        prefix = str(request.scope.get("root_path") or "").rstrip("/")
        return page.Urls(prefix=prefix, ui=dashboard.backend.ui_root())

    @app.get("/", response_class=HTMLResponse)
    def all_stores(request: Request, user: Any = user_dep) -> HTMLResponse:
        shown, notes = dashboard.visible_stores(user)
        return HTMLResponse(page.stores_page(shown, urls(request), notes))

    @app.get("/stores/{store_id}", response_class=HTMLResponse)
    def one_store(request: Request, store_id: str, user: Any = user_dep) -> HTMLResponse:
        return HTMLResponse(page.store_page(dashboard.store(user, store_id), urls(request)))

    @app.get("/api/stores")
    def api_stores(user: Any = user_dep) -> JSONResponse:
        shown, notes = dashboard.visible_stores(user)
        return JSONResponse({"stores": [s.to_dict() for s in shown], "notes": notes})

    @app.get("/api/stores/{store_id}")
    def api_store(store_id: str, user: Any = user_dep) -> JSONResponse:
        return JSONResponse(dashboard.store(user, store_id).to_dict())


def _add_files(app: FastAPI, dashboard: Dashboard) -> None:
    """What the period links open: the report, and the rejected and dead-letter files without events."""
    user_dep = _user_dependency(dashboard)

    @app.get("/stores/{store_id}/periods/{period}/report")
    def report(store_id: str, period: str, user: Any = user_dep) -> JSONResponse:
        data = dashboard.cache.read(dashboard.period_dir(user, store_id, period) / file_name("report"))
        if data is None:
            raise Refused(404, f"Period {period} of store {store_id} has no report.json.")
        return JSONResponse(_redacted(data))

    @app.get("/stores/{store_id}/periods/{period}/rejected")
    def rejected(store_id: str, period: str, user: Any = user_dep) -> JSONResponse:
        rows = rejected_view(dashboard.period_dir(user, store_id, period))
        return JSONResponse({"store_id": store_id, "period": period, "rejected": rows})

    @app.get("/stores/{store_id}/periods/{period}/dead-letters")
    def dead_letters(store_id: str, period: str, user: Any = user_dep) -> JSONResponse:
        rows = dead_letter_view(dashboard.period_dir(user, store_id, period))
        return JSONResponse({"store_id": store_id, "period": period, "dead_letters": rows})
