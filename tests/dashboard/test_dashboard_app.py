"""The dashboard app's access rules and routes, through FastAPI's test client with a backend that
stands in for the deployment (the real auth manager and DB are in tests/e2e/test_dashboard_e2e.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from airflow_omnisend.dashboard.app import COOKIE, create_app, staging_dir
from airflow_omnisend.dashboard.data import RunRecord, StoreSource
from airflow_omnisend.stores import StoreConfig
from airflow_omnisend.testing.dashboard_staging import CUSTOMER_EMAIL, SyntheticPeriod, write_period

if TYPE_CHECKING:
    from pathlib import Path


class TokenError(Exception):
    """What an auth manager raises for a bad token (jwt's InvalidTokenError in Airflow)."""


@dataclass
class Tokens:
    """Token -> user name; ``denied`` users may read no DAG."""

    users: dict[str, str]
    denied: set[str] = field(default_factory=set)
    denied_dags: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def get_user_from_token(self, token: str) -> str:
        if token not in self.users:
            raise TokenError(token)
        return self.users[token]

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        self.asked.append(f"{method} {details} {user}")
        return user not in self.denied and details not in self.denied_dags

    def get_url_login(self, **kwargs: Any) -> str:
        return "/auth/login"


@dataclass
class Backend:
    root: Path
    auth: Tokens
    configs: list[StoreConfig]

    def auth_manager(self) -> Tokens:
        return self.auth

    def dag_details(self, dag_id: str) -> str:
        return dag_id

    def stores(self) -> tuple[list[StoreConfig], list[str]]:
        return self.configs, []

    def source(self, store: StoreConfig) -> StoreSource:
        runs = (RunRecord("2024-03-05", "r1", "success", "backfill", "2026-12-01T10:00:00Z"),)
        return StoreSource(store.store_id, store.dag_id, runs, self.root / store.store_id)

    def ui_root(self) -> str:
        return ""


def _store(store_id: str) -> StoreConfig:
    return StoreConfig(store_id=store_id, omnisend_conn_id=f"omnisend_{store_id}", timezone="UTC",
                       start_date=date(2024, 3, 1), source_conn_id="shop")  # fmt: skip


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    for store_id in ("demo", "secret"):
        write_period(
            tmp_path / store_id, store_id, SyntheticPeriod("2024-03-05", rejected=2, dead_lettered=1)
        )
    auth = Tokens({"t-admin": "admin", "t-outsider": "outsider"}, denied={"outsider"})
    return Backend(tmp_path, auth, [_store("demo"), _store("secret")])


@pytest.fixture
def client(backend: Backend) -> TestClient:
    return TestClient(create_app(backend))


@pytest.mark.parametrize("path", ["/", "/stores/demo", "/api/stores", "/api/stores/demo",
                                  "/stores/demo/periods/2024-03-05/report"])  # fmt: skip
def test_without_a_token_every_route_is_401(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 401
    if not path.startswith("/api/"):
        assert "log in" in answer.text.lower()


def test_a_bad_token_is_401_with_the_login_link(client: TestClient) -> None:
    answer = client.get("/", headers={"Authorization": "Bearer forged"})
    assert answer.status_code == 401
    assert 'href="/auth/login"' in answer.text
    client.cookies.set(COOKIE, "forged")
    assert client.get("/api/stores").json() == {
        "detail": "Your Airflow session is not valid (expired?): log in again."
    }


def test_the_cookie_or_the_bearer_token_logs_in(client: TestClient, backend: Backend) -> None:
    client.cookies.set(COOKIE, "t-admin")
    assert client.get("/stores/demo").status_code == 200
    client.cookies.clear()
    assert client.get("/stores/demo", headers={"Authorization": "Bearer t-admin"}).status_code == 200
    assert "GET omnisend_orders__demo admin" in backend.auth.asked


def test_a_user_who_may_not_read_the_dag_is_403_and_sees_no_store(
    client: TestClient, backend: Backend
) -> None:
    outsider = {"Authorization": "Bearer t-outsider"}
    for path in ("/stores/demo", "/api/stores/demo", "/stores/demo/periods/2024-03-05/rejected"):
        assert client.get(path, headers=outsider).status_code == 403, path
    assert client.get("/api/stores", headers=outsider).json()["stores"] == []
    assert 'data-store="' not in client.get("/", headers=outsider).text


def test_the_all_stores_page_omits_a_denied_store(tmp_path: Path, backend: Backend) -> None:
    backend.auth.denied_dags = {"omnisend_orders__secret"}
    client = TestClient(create_app(backend))
    page = client.get("/", headers={"Authorization": "Bearer t-admin"}).text
    assert 'data-store="demo"' in page
    assert 'data-store="secret"' not in page
    assert client.get("/stores/secret", headers={"Authorization": "Bearer t-admin"}).status_code == 403


def test_an_unknown_store_or_period_is_404(client: TestClient) -> None:
    admin = {"Authorization": "Bearer t-admin"}
    assert client.get("/stores/nope", headers=admin).status_code == 404
    assert client.get("/stores/demo/periods/2024-03-09/report", headers=admin).status_code == 404
    assert client.get("/stores/demo/periods/..%2F..%2Fetc/report", headers=admin).status_code == 404


def test_the_json_and_the_files_behind_the_links_carry_no_email(client: TestClient) -> None:
    admin = {"Authorization": "Bearer t-admin"}
    store = client.get("/api/stores/demo", headers=admin).json()
    assert store["counts"]["rejected"] == 2
    assert [p["period"] for p in store["periods"]] == ["2024-03-05"]
    report = client.get("/stores/demo/periods/2024-03-05/report", headers=admin)
    rejected = client.get("/stores/demo/periods/2024-03-05/rejected", headers=admin)
    dead = client.get("/stores/demo/periods/2024-03-05/dead-letters", headers=admin)
    assert report.json()["events_accepted"] == 100
    assert len(rejected.json()["rejected"]) == 2
    assert dead.json()["dead_letters"][0]["response_code"] == 400
    for answer in (
        store,
        report.text,
        rejected.text,
        dead.text,
        client.get("/stores/demo", headers=admin).text,
    ):
        assert CUSTOMER_EMAIL not in str(answer)


def test_a_remote_staging_root_is_not_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_OMNISEND_STAGING", "s3://aws_default@bucket/stage")
    assert staging_dir(_store("demo")) == (
        None,
        "the staging root s3://aws_default@bucket/stage is not a folder on this api-server",
    )
    monkeypatch.setenv("AIRFLOW_OMNISEND_STAGING", str(tmp_path))
    assert staging_dir(_store("demo")) == (tmp_path / "demo", None)
