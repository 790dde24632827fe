"""A real, local Airflow 3.3 deployment run as subprocesses, for end-to-end tests and ``make demo``.

``dag.test()`` runs one DagRun inside one process; it never shows what only a deployment does: the
scheduler creating and queueing backfill runs, the executor (Local or Celery) handing tasks to separate
processes that talk to the Task Execution API, the triggerer resuming deferred tasks, retries spaced by
their delay. :class:`LocalAirflow` starts exactly those components and waits on the deployment's own
signals (the health endpoint, the REST API, a Celery ping), never on elapsed time::

    profile = ExecutorProfile.local_sqlite()
    with LocalAirflow(home, dags_folder, env={"AIRFLOW_CONN_X": "..."}, profile=profile) as airflow:
        airflow.wait_for_dag("omnisend_orders__demo")
        airflow.unpause("omnisend_orders__demo")          # new DAGs start paused
        backfill = airflow.backfill("omnisend_orders__demo", "2024-03-04", "2024-03-06")
        runs = airflow.wait_for_backfill(backfill)

Every component writes to ``<home>/component-logs/<name>.log``; :meth:`LocalAirflow.diagnostics` tails
them (and the logs of failed tasks) so a failing test says what happened. Nothing here imports Airflow:
it is driven through its CLI and REST API, so the deployment's configuration is exactly the environment
given here (the calling process's ``AIRFLOW*`` variables are not passed on).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from airflow_omnisend.hooks._brand_budget import DIR_ENV as BRAND_BUDGET_DIR_ENV
from airflow_omnisend.testing.local_airflow_config import (
    HOSTNAME_ENV,
    TERMINAL_RUN_STATES,
    AirflowApiError,
    DagRunInfo,
    ExecutorProfile,
    LocalAirflowError,
    component_hostname,
    free_port,
    free_ports,
    mentions_error,
    tail,
    task_log_tail,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "TERMINAL_RUN_STATES",
    "AirflowApiError",
    "DagRunInfo",
    "ExecutorProfile",
    "LocalAirflow",
    "LocalAirflowError",
    "component_hostname",
    "free_port",
    "free_ports",
]

#: env var every process of one deployment carries: how ``stop()`` finds stragglers outside their group
DEPLOYMENT_MARKER_ENV = "AIRFLOW_OMNISEND_DEPLOYMENT"
ADMIN_USER = "admin"

_T = TypeVar("_T")


@dataclass
class _Component:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _default_airflow_bin() -> Path:
    beside = Path(sys.executable).parent / "airflow"
    if beside.exists():
        return beside
    found = shutil.which("airflow")
    if not found:
        raise LocalAirflowError(
            "no 'airflow' executable beside this Python or on PATH; install apache-airflow into this venv"
        )
    return Path(found)


class LocalAirflow:
    """One local Airflow deployment: its configuration, its processes and helpers to drive it.

    :param home: AIRFLOW_HOME (created); holds airflow.cfg, the SQLite DB, task and component logs.
    :param dags_folder: the DAG files (absolute).
    :param env: extra environment for every component, applied last: connections (``AIRFLOW_CONN_*``),
        the stores file, the staging root, ``AIRFLOW__SECTION__KEY`` settings overriding the defaults here.
    :param profile: executor and metadata DB (default: LocalExecutor on SQLite).
    :param api_port / worker_log_port / trigger_log_port: ports; 0 picks free ones, so parallel
        deployments do not clash on 8080/8793/8794.
    :param airflow_bin: the ``airflow`` executable (default: beside this Python, else on PATH).
    """

    def __init__(
        self,
        home: str | Path,
        dags_folder: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        profile: ExecutorProfile | None = None,
        api_port: int = 0,
        worker_log_port: int = 0,
        trigger_log_port: int = 0,
        airflow_bin: str | Path | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        if not self.dags_folder.is_dir():
            raise LocalAirflowError(f"dags_folder {self.dags_folder} is not a directory")
        self.profile = profile or ExecutorProfile.local_sqlite()
        self.airflow_bin = Path(airflow_bin) if airflow_bin else _default_airflow_bin()
        picked = free_ports(3 + self.profile.celery_workers)
        self.api_port = api_port or picked[0]
        self.worker_log_port = worker_log_port or picked[1]
        self.trigger_log_port = trigger_log_port or picked[2]
        #: each Celery worker serves its task logs on its own port
        self.celery_log_ports = picked[3:]
        self.deployment_id = uuid.uuid4().hex
        self.logs_dir = self.home / "component-logs"
        self._password = secrets.token_urlsafe(16)
        self._token: str | None = None
        self._components: list[_Component] = []
        #: process groups of components killed by kill_component: their children live on there
        self._killed_groups: dict[int, str] = {}
        #: name -> (CLI args, extra env) each component was started with: how a killed one restarts
        self._specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._extra_env = dict(env or {})
        self.env = self._build_env()

    # -- configuration -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return self.profile.sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}"

    def _build_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        bin_dir = str(self.airflow_bin.parent)
        inherited["PATH"] = os.pathsep.join([bin_dir, inherited.get("PATH", os.defpath)])
        settings = {
            "CORE__DAGS_FOLDER": str(self.dags_folder),
            "CORE__EXECUTOR": self.profile.executor,
            "CORE__LOAD_EXAMPLES": "False",
            "CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "CORE__PARALLELISM": str(self.profile.parallelism),
            "CORE__FERNET_KEY": _fernet_key(),
            "CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "simple_auth_manager_passwords.json"),
            "DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            # one secret for every component: the api-server signs task tokens the workers present
            "API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "API__SECRET_KEY": secrets.token_urlsafe(32),
            "API__HOST": "127.0.0.1",
            "API__PORT": str(self.api_port),
            "API__BASE_URL": self.api_url,
            "API__WORKERS": "1",
            "LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            # parse new files within seconds (3.x: dag_dir_list_interval became refresh_interval)
            "DAG_PROCESSOR__REFRESH_INTERVAL": "3",
            "DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            "SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "SCHEDULER__PARSING_CLEANUP_INTERVAL": "300",
        }
        if self.profile.executor == "CeleryExecutor":
            settings |= {
                "CELERY__BROKER_URL": str(self.profile.broker_url),
                "CELERY__RESULT_BACKEND": self.profile.result_backend or f"db+{self.sql_alchemy_conn}",
                "CELERY__WORKER_CONCURRENCY": str(self.profile.worker_concurrency),
            }
        env = inherited | {f"AIRFLOW__{k}": v for k, v in settings.items()}
        env |= {"AIRFLOW_HOME": str(self.home), DEPLOYMENT_MARKER_ENV: self.deployment_id}
        # the brand budget of this deployment's processes, not of every deployment on the machine
        env[BRAND_BUDGET_DIR_ENV] = str(self.home / "brand-budget")
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        return env | self._extra_env

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        """Migrate the metadata DB, start every component, and return once all report healthy."""
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "simple_auth_manager_passwords.json").write_text(
            json.dumps({ADMIN_USER: self._password}) + "\n"
        )
        try:
            self.run_cli("db", "migrate", timeout=max(30.0, deadline - time.monotonic()))
            self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)])
            self._spawn("scheduler", ["scheduler"])
            self._spawn("dag-processor", ["dag-processor"])
            self._spawn("triggerer", ["triggerer"])
            for index in range(1, self.profile.celery_workers + 1):
                self._spawn_worker(index)
            self._wait_for("the api-server to answer", self._api_ready, deadline)
            self._wait_for("scheduler, dag-processor and triggerer to be healthy", self._jobs_ready, deadline)
            if self.profile.celery_workers:
                self._wait_for("every Celery worker to answer a ping", self._workers_ready, deadline)
        except BaseException:
            self.stop()
            raise

    def _spawn_worker(self, index: int) -> None:
        name = f"worker{index}"
        hostname = f"{name}-{self.deployment_id[:8]}"
        env = {
            HOSTNAME_ENV: hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{component_hostname.__module__}.component_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.celery_log_ports[index - 1]),
        }
        argv = ["celery", "worker", "--celery-hostname", f"{hostname}@%h", "--without-mingle"]
        self._spawn(name, argv, env)

    def _spawn(self, name: str, args: Sequence[str], extra_env: Mapping[str, str] | None = None) -> None:
        self._specs[name] = (list(args), dict(extra_env or {}))
        log_path = self.logs_dir / f"{name}.log"
        log_file = log_path.open("ab")
        argv = [str(self.airflow_bin), *args]
        process = subprocess.Popen(
            argv,
            cwd=self.home,
            env=self.env | dict(extra_env or {}),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can reach its children
        )
        self._components.append(_Component(name, argv, log_path, process, log_file))

    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self._components]

    def kill_component(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Send ``sig`` (default SIGKILL) to one component's main process only - its children live on, as
        after a crash of that process - and wait for it to exit. It is no longer watched (the waits do not
        fail on it) until :meth:`restart_component`. Returns the killed pid."""
        comp = next((c for c in self._components if c.name == name), None)
        if comp is None:
            raise LocalAirflowError(f"no running component {name!r}; running: {self.component_names}")
        with contextlib.suppress(ProcessLookupError):
            comp.process.send_signal(sig)
        try:
            comp.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LocalAirflowError(f"{name} (pid {comp.process.pid}) outlived signal {sig}") from exc
        comp.log_file.close()
        self._components.remove(comp)
        self._killed_groups[comp.process.pid] = name
        return comp.process.pid

    def restart_component(self, name: str) -> None:
        """Start a component :meth:`kill_component` ended, with the arguments and environment it had (its
        log continues in the same file)."""
        if name in self.component_names:
            raise LocalAirflowError(f"{name} is still running; kill_component({name!r}) first")
        if name not in self._specs:
            raise LocalAirflowError(f"{name!r} was never started here; known: {sorted(self._specs)}")
        args, extra_env = self._specs[name]
        self._spawn(name, args, extra_env)

    def stop(self, grace: float = 20.0) -> list[str]:
        """Stop every component: SIGTERM, then SIGKILL to the process group of any still running after
        ``grace`` seconds, then kill any other process carrying this deployment's marker (a task process
        that left its group). Returns descriptions of what had to be killed; raises if anything survives.
        """
        killed: list[str] = []
        for comp in reversed(self._components):
            if comp.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    comp.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for comp in reversed(self._components):
            try:
                comp.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(f"{comp.name} (pid {comp.process.pid}) ignored SIGTERM for {grace:.0f}s")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(comp.process.pid, signal.SIGKILL)  # its group: children it did not reap
            with contextlib.suppress(subprocess.TimeoutExpired):
                comp.process.wait(timeout=10)
            comp.log_file.close()
        self._components.clear()
        killed.extend(self._kill_orphaned_groups())
        for proc in self.processes():
            killed.append(f"straggler pid {proc.pid} {' '.join(proc.cmdline())[:120]!r}")
            with contextlib.suppress(Exception):
                proc.kill()
        survivors = _wait_gone(self.processes(), 10.0)
        if survivors:
            raise LocalAirflowError(
                f"processes of deployment {self.deployment_id} survived SIGKILL: {[p.pid for p in survivors]}"
            )
        return killed

    def _kill_orphaned_groups(self) -> list[str]:
        """SIGKILL what is left in the groups of killed components (a killed scheduler's executor
        workers and log server: their retitled processes no longer show the marker)."""
        import psutil

        killed = []
        for pgid, name in self._killed_groups.items():
            for proc in psutil.process_iter():
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    if os.getpgid(proc.pid) == pgid:
                        killed.append(
                            f"orphan pid {proc.pid} of the killed {name} {' '.join(proc.cmdline())[:80]!r}"
                        )
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self._killed_groups.clear()
        return killed

    def processes(self) -> list[Any]:
        """Live processes (psutil) carrying this deployment's marker: the components and their children."""
        import psutil  # Airflow's own dependency; imported here so the module stays import-light

        found = []
        for proc in psutil.process_iter():
            if proc.pid == os.getpid():
                continue
            try:
                ours = proc.environ().get(DEPLOYMENT_MARKER_ENV) == self.deployment_id
                if ours and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    # -- waiting -------------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        for comp in self._components:
            code = comp.process.poll()
            if code is not None:
                raise LocalAirflowError(
                    f"component {comp.name} exited with code {code}\n{self.diagnostics(lines=60)}"
                )

    def _wait_for(
        self,
        what: str,
        probe: Callable[[], _T | None],
        deadline: float,
        interval: float = 0.5,
    ) -> _T:
        """Poll ``probe`` until it returns something other than None/False, checking components are alive;
        raise with diagnostics when ``deadline`` (monotonic) passes."""
        last_error: Exception | None = None
        while True:
            self._check_alive()
            try:
                result = probe()
            except AirflowApiError as exc:
                if not exc.transient:
                    raise
                last_error, result = exc, None
            except (OSError, ValueError) as exc:  # not listening yet (URLError), a cut-off JSON answer
                last_error, result = exc, None
            if result is not None and result is not False:
                return result
            if time.monotonic() >= deadline:
                hint = f" (last error: {last_error})" if last_error else ""
                raise LocalAirflowError(f"timed out waiting for {what}{hint}\n{self.diagnostics()}")
            time.sleep(interval)  # polling cadence; the condition above is what is waited on

    def wait_until(
        self, what: str, probe: Callable[[], _T | None], timeout: float, interval: float = 1.0
    ) -> _T:
        """Public form of the poll loop: ``probe`` until truthy, or LocalAirflowError after ``timeout``."""
        return self._wait_for(what, probe, time.monotonic() + timeout, interval)

    def _api_ready(self) -> bool:
        self.api("GET", "/api/v2/monitor/health", auth=False)
        return True

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health``: metadatabase, scheduler, triggerer and dag_processor status."""
        result: dict[str, Any] = self.api("GET", "/api/v2/monitor/health", auth=False)
        return result

    def _jobs_ready(self) -> bool:
        health = self.health()
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def _workers_ready(self) -> bool:
        names = {f"worker{i}" for i in range(1, self.profile.celery_workers + 1)}
        answered = self.celery_ping()
        return all(any(host.startswith(f"{n}-{self.deployment_id[:8]}@") for host in answered) for n in names)

    def celery_ping(self, timeout: float = 1.0) -> list[str]:
        """Hostnames of the Celery workers answering a ping on this deployment's broker."""
        from celery import Celery  # only the Celery profile gets here; no Airflow import

        app = Celery(broker=self.profile.broker_url)
        try:
            replies = app.control.ping(timeout=timeout) or []
        finally:
            app.close()
        return sorted(host for reply in replies for host in reply)

    # -- the CLI and the REST API --------------------------------------------------------------------

    def run_cli(
        self, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this deployment; with ``check``, a non-zero exit raises with the
        command's output."""
        argv = [str(self.airflow_bin), *args]
        try:
            done = subprocess.run(
                argv,
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalAirflowError(f"`airflow {' '.join(args)}` did not finish in {timeout:.0f}s") from exc
        if check and done.returncode != 0:
            raise LocalAirflowError(
                f"`airflow {' '.join(args)}` exited with {done.returncode}\n"
                f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
            )
        return done

    def _login(self) -> str:
        body = json.dumps({"username": ADMIN_USER, "password": self._password}).encode()
        answer = self._request("POST", "/auth/token", body, headers={"Content-Type": "application/json"})
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise LocalAirflowError(f"the api-server gave no access token: {answer!r}")
        return token

    def api(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        """Call the REST API (JSON in, JSON out) as the admin user of the simple auth manager."""
        if params:
            path = f"{path}?{urllib.parse.urlencode(params, doseq=True)}"
        headers = {"Content-Type": "application/json"}
        body = None if payload is None else json.dumps(payload).encode()
        if auth:
            if self._token is None:
                self._token = self._login()
            headers["Authorization"] = f"Bearer {self._token}"
        return self._request(method, path, body, headers)

    def _request(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> Any:
        request = urllib.request.Request(
            f"{self.api_url}{path}", data=body, method=method, headers=dict(headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:2000]
            raise AirflowApiError(f"{method} {path} answered {exc.code}: {detail}", status=exc.code) from exc
        return json.loads(raw) if raw else None

    # -- DAGs, backfills, runs -----------------------------------------------------------------------

    def import_errors(self) -> dict[str, str]:
        """File name -> stack trace of every DAG file that failed to import."""
        data = self.api("GET", "/api/v2/importErrors", params={"limit": 100})
        return {e["filename"]: e["stack_trace"] for e in data.get("import_errors", [])}

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until ``dag_id`` is parsed and serialized (its tasks are served); fail at once, with the
        traceback, when its file has an import error."""

        def probe() -> bool:
            try:
                self.api("GET", f"/api/v2/dags/{dag_id}/tasks")
            except AirflowApiError as exc:
                if exc.status != 404:
                    raise
                errors = self.import_errors()
                if errors:
                    raise LocalAirflowError(
                        f"{dag_id} is not parsed and there are import errors:\n"
                        + "\n".join(f"{name}:\n{trace}" for name, trace in errors.items())
                    ) from None
                return False
            return True

        self._wait_for(f"DAG {dag_id} to be parsed", probe, time.monotonic() + timeout, interval=1.0)

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id``: new DAGs start paused, and the scheduler never runs a paused DAG's tasks
        (a backfill of it would stay queued)."""
        answer = self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        if answer.get("is_paused") is not False:
            raise LocalAirflowError(f"{dag_id} is still paused after PATCH: {answer!r}")

    def set_pool(
        self, name: str, slots: int, description: str = "", *, include_deferred: bool = True
    ) -> None:
        """Create or update a pool (the store DAGs' Omnisend tasks run in ``omnisend_<store_id>``; a task
        in a pool that does not exist is never scheduled). ``include_deferred``: a deferred send (waiting
        out a 429 or a batch) keeps its slot, so it still counts against the brand's rate budget."""
        body = {
            "name": name,
            "slots": slots,
            "description": description,
            "include_deferred": include_deferred,
        }
        try:
            self.api("POST", "/api/v2/pools", body)
        except AirflowApiError as exc:
            if exc.status != 409:
                raise
            self.api("PATCH", f"/api/v2/pools/{urllib.parse.quote(name)}", body)

    def backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        *,
        reprocess_behavior: str | None = None,
        max_active_runs: int | None = None,
        conf: Mapping[str, Any] | None = None,
    ) -> int:
        """``airflow backfill create`` (both dates inclusive); returns the new backfill's id."""
        before = {b["id"] for b in self.backfills(dag_id)}
        args = ["backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date]
        if reprocess_behavior:
            args += ["--reprocess-behavior", reprocess_behavior]
        if max_active_runs:
            args += ["--max-active-runs", str(max_active_runs)]
        if conf is not None:
            args += ["--dag-run-conf", json.dumps(dict(conf))]
        self.run_cli(*args)
        created = [b for b in self.backfills(dag_id) if b["id"] not in before]
        if len(created) != 1:
            raise LocalAirflowError(f"expected one new backfill of {dag_id}, found {created!r}")
        return int(created[0]["id"])

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        data = self.api("GET", "/api/v2/backfills", params={"dag_id": dag_id, "limit": 100})
        return list(data.get("backfills", []))

    def backfill_info(self, backfill_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/api/v2/backfills/{backfill_id}")
        return result

    def dag_runs(self, dag_id: str) -> list[DagRunInfo]:
        """Every run of ``dag_id``, oldest logical date first."""
        data = self.api(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000, "order_by": "logical_date"}
        )
        return [DagRunInfo.from_api(r) for r in data.get("dag_runs", [])]

    def wait_for_runs(
        self,
        dag_id: str,
        *,
        count: int,
        timeout: float = 300.0,
        predicate: Callable[[DagRunInfo], bool] | None = None,
    ) -> list[DagRunInfo]:
        """Wait until ``dag_id`` has at least ``count`` runs (matching ``predicate``) and all of them are
        in a terminal state (success/failed); returns them."""

        def probe() -> list[DagRunInfo] | None:
            runs = [r for r in self.dag_runs(dag_id) if predicate is None or predicate(r)]
            return runs if len(runs) >= count and all(r.terminal for r in runs) else None

        return self._wait_for(
            f"{count} terminal run(s) of {dag_id}", probe, time.monotonic() + timeout, interval=2.0
        )

    def wait_for_backfill(self, backfill_id: int, timeout: float = 300.0) -> dict[str, Any]:
        """Wait until the scheduler marks the backfill completed (all its runs ended; it checks every 30 s,
        and only then may another backfill of the DAG be created). Returns the backfill."""

        def probe() -> dict[str, Any] | None:
            info = self.backfill_info(backfill_id)
            return info if info.get("completed_at") else None

        return self._wait_for(
            f"backfill {backfill_id} to complete", probe, time.monotonic() + timeout, interval=2.0
        )

    def task_instances(self, dag_id: str, run_id: str = "~") -> list[dict[str, Any]]:
        """Task instances of one run (``~``: of every run), mapped ones included."""
        items: list[dict[str, Any]] = []
        while True:
            data = self.api(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='~')}/taskInstances",
                params={"limit": 100, "offset": len(items)},
            )
            page = list(data.get("task_instances", []))
            items += page
            if not page or len(items) >= int(data.get("total_entries", 0)):
                return items

    # -- diagnostics ---------------------------------------------------------------------------------

    def task_log_files(self, dag_id: str | None = None) -> list[Path]:
        root = self.home / "logs"
        pattern = f"dag_id={dag_id}/**/*.log" if dag_id else "dag_id=*/**/*.log"
        return sorted(root.glob(pattern))

    def diagnostics(self, lines: int = 40, task_logs: Iterable[Path] | None = None) -> str:
        """Tails of every component's log and of the given task logs (default: every task log that
        mentions an error), for a failing test's report."""
        parts = [f"== local Airflow at {self.home} (api {self.api_url})"]
        states = {c.log_path: c.process.poll() for c in self._components}
        for log_path in sorted(self.logs_dir.glob("*.log")):
            code = states.get(log_path, "stopped")
            state = "running" if code is None else f"exited {code}" if isinstance(code, int) else code
            parts.append(f"-- {log_path.stem} [{state}] {log_path}\n{tail(log_path, lines)}")
        if task_logs is None:
            task_logs = [p for p in self.task_log_files() if mentions_error(p)]
        for path in list(task_logs)[-8:]:
            parts.append(f"-- task log {path.relative_to(self.home)}\n{task_log_tail(path, lines // 2)}")
        return "\n".join(parts)


def _wait_gone(procs: list[Any], timeout: float) -> list[Any]:
    if not procs:
        return []
    import psutil

    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    return list(alive)
