"""LocalAirflow without a deployment: configuration, environment isolation, process clean-up, log rendering,
and the local-server helpers' refusal when a server is absent. (The deployment itself is exercised by
tests/e2e/test_scheduler_backfill.py and tests/e2e/test_distributed.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from airflow_omnisend.testing.local_airflow import (
    DEPLOYMENT_MARKER_ENV,
    ExecutorProfile,
    LocalAirflow,
    LocalAirflowError,
    component_hostname,
    free_port,
)
from airflow_omnisend.testing.local_airflow_config import HOSTNAME_ENV, free_ports, task_log_tail
from airflow_omnisend.testing.local_servers import (
    ServerUnavailableError,
    free_redis_database,
    fresh_postgres_database,
)

if TYPE_CHECKING:
    from pathlib import Path

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/x"


def _deployment(tmp_path: Path, **kwargs: object) -> LocalAirflow:
    dags = tmp_path / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    return LocalAirflow(tmp_path / "home", dags, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "SequentialExecutor"}, "choose LocalExecutor or CeleryExecutor"),
        ({"sql_alchemy_conn": "sqlite:///relative.db"}, "SQLite paths must be absolute"),
        ({"celery_workers": 2}, "only CeleryExecutor has Celery workers"),
        (
            {"executor": "CeleryExecutor", "sql_alchemy_conn": PG, "celery_workers": 1},
            "broker_url is required",
        ),
        (
            {"executor": "CeleryExecutor", "broker_url": "redis://x/1", "celery_workers": 1},
            "needs a server database",
        ),
        (
            {"executor": "CeleryExecutor", "sql_alchemy_conn": PG, "broker_url": "redis://x/1"},
            "give at least 1 worker",
        ),
        ({"parallelism": 0}, "parallelism=0: give an integer >= 1"),
    ],
)
def test_profile_refuses_impossible_set_ups(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalAirflowError, match=message):
        ExecutorProfile(**kwargs)  # type: ignore[arg-type]


def test_environment_is_the_deployments_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what the calling process has must not leak in: another home, executor, connection, stores file
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    monkeypatch.setenv("AIRFLOW_CONN_LEAKED", "http://leak")
    monkeypatch.setenv("AIRFLOW_OMNISEND_STORES", "/leaked/stores.yaml")
    monkeypatch.setenv("AIRFLOW_OMNISEND_BRAND_BUDGET_DIR", "/leaked/budget")
    deployment = _deployment(
        tmp_path,
        env={"AIRFLOW_CONN_MINE": "http://mine", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"},
        api_port=18080,
        worker_log_port=18793,
        trigger_log_port=18794,
    )
    env = deployment.env
    assert "AIRFLOW_CONN_LEAKED" not in env
    assert "AIRFLOW_OMNISEND_STORES" not in env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW_CONN_MINE"] == "http://mine"
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "True"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'home' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18793"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "18794"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
    assert env[DEPLOYMENT_MARKER_ENV] == deployment.deployment_id
    # one brand budget per deployment: another deployment's 429 holds do not reach this one's senders
    assert env["AIRFLOW_OMNISEND_BRAND_BUDGET_DIR"] == str(tmp_path / "home" / "brand-budget")
    assert env["PATH"].split(os.pathsep)[0] == str(deployment.airflow_bin.parent)


def test_two_deployments_get_their_own_ports_and_secrets(tmp_path: Path) -> None:
    first, second = _deployment(tmp_path / "a"), _deployment(tmp_path / "b")
    ports = {first.api_port, first.worker_log_port, first.trigger_log_port}
    assert len(ports) == 3
    assert not {8080, 8793, 8794} & ports
    assert first.env["AIRFLOW__API_AUTH__JWT_SECRET"] != second.env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert first.deployment_id != second.deployment_id


def test_celery_profile_configures_broker_backend_and_concurrency(tmp_path: Path) -> None:
    profile = ExecutorProfile.celery(PG, "redis://127.0.0.1:6379/3", workers=2, worker_concurrency=3)
    env = _deployment(tmp_path, profile=profile).env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/3"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{PG}"
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == PG


def test_missing_dags_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalAirflowError, match="is not a directory"):
        LocalAirflow(tmp_path / "home", tmp_path / "no-dags")


def test_component_hostname_names_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTNAME_ENV, "worker7-abc")
    assert component_hostname() == "worker7-abc"
    monkeypatch.delenv(HOSTNAME_ENV)
    assert component_hostname() == socket.getfqdn()


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    for port in [*ports, free_port()]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


FAKE_AIRFLOW = """\
#!{python}
# Stands in for `airflow`: a component that starts a child in its own session ignoring SIGTERM (as a
# task process that left its group would), then waits; stop() must still leave nothing behind.
import os, signal, subprocess, sys, time
ready = os.environ["FAKE_READY"]
child = subprocess.Popen(
    [sys.executable, "-c", "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "open(%r, 'w').write('up'); signal.pause()" % (ready,)],
    start_new_session=True,
)
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and the component ignores SIGTERM too
signal.pause()
"""


def _fake_component(tmp_path: Path, script: str, name: str) -> tuple[LocalAirflow, Path]:
    """A deployment running ``script`` (a stand-in for ``airflow``) as component ``name``, once the
    script's child has written the file returned (FAKE_READY)."""
    fake = tmp_path / "airflow"
    fake.write_text(textwrap.dedent(script.format(python=sys.executable)))
    fake.chmod(0o755)
    ready = tmp_path / "child-ready"
    deployment = _deployment(tmp_path, airflow_bin=fake, env={"FAKE_READY": str(ready)})
    deployment.logs_dir.mkdir(parents=True)
    deployment._spawn(name, ["scheduler"])
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline, f"the fake {name}'s child never started"
        time.sleep(0.05)  # polling the ready file; the condition is what is waited on
    return deployment, ready


def test_stop_kills_components_that_ignore_sigterm_and_their_escaped_children(tmp_path: Path) -> None:
    deployment, _ = _fake_component(tmp_path, FAKE_AIRFLOW, "stubborn")
    assert len(deployment.processes()) == 2

    killed = deployment.stop(grace=1.0)

    assert any("stubborn" in k and "ignored SIGTERM" in k for k in killed), killed
    assert any("straggler" in k for k in killed), killed
    assert deployment.processes() == []


ORPHANING_AIRFLOW = """\
#!{python}
# Stands in for `airflow scheduler`: a child in the same process group whose environment does not carry
# the deployment's marker (as an executor worker that retitled itself), then waits.
import os, subprocess, sys
ready = os.environ["FAKE_READY"]
subprocess.Popen(
    [sys.executable, "-c",
     "import os, signal; open(%r, 'w').write(str(os.getpid())); signal.pause()" % (ready,)],
    env={{}},
)
import signal
signal.pause()
"""


def test_stop_kills_what_a_killed_component_left_in_its_group(tmp_path: Path) -> None:
    deployment, ready = _fake_component(tmp_path, ORPHANING_AIRFLOW, "scheduler")
    child = psutil.Process(int(ready.read_text()))
    deployment.kill_component("scheduler")
    assert child.is_running(), "the child should outlive its killed parent, as a crash leaves it"
    assert deployment.processes() == []  # the marker cannot find it

    killed = deployment.stop(grace=1.0)

    assert any(f"orphan pid {child.pid} of the killed scheduler" in k for k in killed), killed
    child.wait(timeout=10)
    assert not child.is_running()


def test_run_cli_failure_carries_the_output(tmp_path: Path) -> None:
    fake = tmp_path / "airflow"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('out-text'); print('err-text', file=sys.stderr)\n"
                    "sys.exit(3)\n")  # fmt: skip
    fake.chmod(0o755)
    deployment = _deployment(tmp_path, airflow_bin=fake)
    deployment.home.mkdir(parents=True)
    with pytest.raises(LocalAirflowError, match=r"(?s)exited with 3.*out-text.*err-text"):
        deployment.run_cli("dags", "list")
    done = deployment.run_cli("dags", "list", check=False)
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 3


def test_task_log_tail_renders_json_lines_with_the_exception(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    records = [
        {"timestamp": "t1", "level": "info", "event": "starting"},
        {
            "timestamp": "t2",
            "level": "error",
            "event": "Task failed with exception",
            "error_detail": [{"exc_type": "XComNotFound", "exc_value": "key partition"}],
        },
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nplain line\n")
    text = task_log_tail(log, 10)
    assert "t2 error Task failed with exception\n    XComNotFound: key partition" in text
    assert text.splitlines()[-1] == "plain line"


def test_absent_servers_are_reported_not_hung_on() -> None:
    port = free_port()  # nothing listens there
    with (
        pytest.raises(ServerUnavailableError, match=f"PostgreSQL is not reachable at 127.0.0.1:{port}"),
        fresh_postgres_database(port=port),
    ):
        pass
    with (
        pytest.raises(ServerUnavailableError, match=f"Redis is not reachable at 127.0.0.1:{port}"),
        free_redis_database(port=port),
    ):
        pass


@pytest.mark.postgres
def test_fresh_postgres_database_exists_only_inside() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        with fresh_postgres_database() as url:
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as conn:
                assert conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname='public'"
                ).fetchone() == (0,)
    except ServerUnavailableError as exc:
        pytest.skip(str(exc))
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_free_redis_databases_are_distinct_claimed_and_flushed() -> None:
    redis = pytest.importorskip("redis")
    try:
        with free_redis_database() as first, free_redis_database() as second:
            assert first != second
            number = int(first.rsplit("/", 1)[1])
            client = redis.Redis(host="127.0.0.1", port=6379, db=number)
            client.set("left-by-a-test", "1")
            assert client.dbsize() == 2  # the claim and ours
    except ServerUnavailableError as exc:
        pytest.skip(str(exc))
    assert client.dbsize() == 0
    client.close()
