"""docker/docker-compose.yaml and docker/Dockerfile name only things that exist, and agree with the repo.

No Docker engine runs here, so the compose file is checked statically: every path it names (build
context, Dockerfile, bind mounts, files in commands and environment values), every command it runs
(``airflow-omnisend`` subcommands and their flags through the subcommand's own argparse parser,
``airflow`` subcommands through Airflow's CLI parser), the connections (parsed by the hook's own
settings parser) and the stores file (its pools and connections are preset) - so a rename in the repo
breaks this test instead of a user's first ``docker compose up``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from airflow_omnisend.cli import COMMANDS

REPO = Path(__file__).resolve().parent.parent
DOCKER_DIR = REPO / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
STORES_FILE = REPO / "dags" / "stores.yaml"
SHELLS = ("bash", "sh")
SHELL_OPERATORS = (";", "&&", "||", "|", "&")
IMAGE = "apache/airflow:3.3.2-python3.11"


def _load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE} is not a mapping"
    assert isinstance(data.get("services"), dict), f"{COMPOSE_FILE} has no services"
    return data


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: services that run the project's image (Airflow components, the init job and the emulator)
PROJECT_SERVICES = {name: svc for name, svc in SERVICES.items() if "build" in svc}
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")


def _argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _script_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (lines, ``;``, ``&&``, ``||``, pipes), ``exec`` stripped."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in [*lexer, ";"]:
            if token in SHELL_OPERATORS:
                if current and current[0] == "exec":
                    current = current[1:]
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def service_commands(service: dict[str, Any]) -> list[list[str]]:
    """What a service runs, as argv lists. Without an ``entrypoint`` the image's entrypoint runs
    ``airflow <command>``; a shell entrypoint (or ``entrypoint: []`` + ``bash -c``) runs a script."""
    entrypoint = service.get("entrypoint")
    command = _argv(service.get("command"))
    if entrypoint is None:
        return [["airflow", *command]] if command else []
    argv = _argv(entrypoint) + command
    if argv and PurePosixPath(argv[0]).name in SHELLS and "-c" in argv:
        return _script_commands(argv[argv.index("-c") + 1])
    return [argv]


ALL_COMMANDS = [(name, argv) for name, svc in SERVICES.items() for argv in service_commands(svc)]


def _commands_of(program: str) -> list[tuple[str, list[str]]]:
    return [(name, argv[1:]) for name, argv in ALL_COMMANDS if argv and argv[0] == program]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, container path) of each volume entry (short syntax ``src:dst[:mode]`` or long syntax)."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts.append((str(entry["source"]), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            mounts.append((source, target))
    return mounts


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _host_path(service: dict[str, Any], container_path: str) -> Path | str | None:
    """Where ``container_path`` comes from: a repo path (bind mount), ``"volume"`` (a named volume:
    runtime data), or None (not under any mount)."""
    target = PurePosixPath(container_path)
    best: tuple[str, str] | None = None
    for source, dest in _mounts(service):
        if (target == PurePosixPath(dest) or PurePosixPath(dest) in target.parents) and (
            best is None or len(dest) > len(best[1])
        ):
            best = (source, dest)
    if best is None:
        return None
    source, dest = best
    if not _is_bind(source):
        return "volume"
    return (DOCKER_DIR / source / target.relative_to(dest)).resolve()


def _connections() -> dict[str, dict[str, Any]]:
    """conn id (lower case) -> parsed JSON of every ``AIRFLOW_CONN_*`` in the Airflow services."""
    conns: dict[str, dict[str, Any]] = {}
    for svc in PROJECT_SERVICES.values():
        for key, value in _env(svc).items():
            if key.startswith("AIRFLOW_CONN_"):
                conns[key.removeprefix("AIRFLOW_CONN_").lower()] = json.loads(value)
    return conns


def _stores() -> list[dict[str, Any]]:
    data = yaml.safe_load(STORES_FILE.read_text())
    stores = data["stores"]
    assert stores, f"{STORES_FILE} lists no store"
    return list(stores)


def _omnisend_args(subcommand: str, args: list[str]) -> argparse.Namespace:
    module = importlib.import_module(COMMANDS[subcommand][0])
    parser = argparse.ArgumentParser(prog=f"airflow-omnisend {subcommand}")
    module.configure(parser)
    try:
        return parser.parse_args(args)
    except SystemExit as exc:  # argparse printed why (unknown flag, bad type) on stderr
        pytest.fail(f"airflow-omnisend {subcommand} {shlex.join(args)}: rejected by its parser ({exc})")


def _emulator_args() -> argparse.Namespace:
    runs = [args for _svc, args in _commands_of("airflow-omnisend") if args[:1] == ["emulator"]]
    assert len(runs) == 1, f"expected one emulator service, found {runs}"
    return _omnisend_args("emulator", runs[0][1:])


def _sample_store_args() -> list[argparse.Namespace]:
    runs = [args for _svc, args in _commands_of("airflow-omnisend") if args[:1] == ["sample-store"]]
    return [_omnisend_args("sample-store", args[1:]) for args in runs]


def _header_commands() -> list[tuple[str, list[str]]]:
    """``(service, airflow args)`` of each ``docker compose ... exec <service> airflow ...`` line the
    compose file's header comment tells a user to run, in order."""
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0]
    text = re.sub(r"\\\n#\s*", " ", header)
    found = []
    for match in re.finditer(r"docker compose [^\n]*? exec (\S+)\s+airflow\s+([^\n]+)", text):
        found.append((match.group(1), shlex.split(match.group(2))))
    return found


# -- paths --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_build_context_and_dockerfile_exist(name: str) -> None:
    build = PROJECT_SERVICES[name]["build"]
    context = (DOCKER_DIR / build["context"]).resolve()
    assert context == REPO, f"{name}: build context {context} is not the repository root"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


def test_dockerfile_copies_existing_paths_and_pins_the_image() -> None:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms == [IMAGE], f"the image must be pinned to {IMAGE} (http provider 6.x needs Python 3.11+)"
    copies = [shlex.split(line)[1:] for line in lines if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing from the repository"
    for args in copies:
        sources = [a for a in args if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile COPY {source}: not in the repository"
    extras = re.findall(r"airflow-omnisend\[([a-z,]+)\]", DOCKERFILE.read_text())
    optional = (REPO / "pyproject.toml").read_text()
    for extra in ",".join(extras).split(","):
        assert re.search(rf"^{extra} = \[", optional, re.M), f"pyproject.toml has no extra {extra!r}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_exist_and_named_volumes_are_declared(name: str) -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for source, target in _mounts(SERVICES[name]):
        if _is_bind(source):
            assert (DOCKER_DIR / source).exists(), f"{name}: bind mount {source} -> {target} is missing"
        else:
            assert source in declared, f"{name}: volume {source!r} is not declared under top-level volumes"


def _referenced_paths(service: dict[str, Any]) -> list[str]:
    paths = []
    for argv in service_commands(service):
        paths += [a for a in argv if a.startswith("/opt/airflow")]
    for key, value in _env(service).items():
        if value.startswith("/opt/airflow"):
            paths.append(value)
        if key.startswith("AIRFLOW_CONN_"):
            host = str(json.loads(value).get("host", ""))
            if host.startswith("/opt/airflow"):
                paths.append(host)
    return paths


@pytest.mark.parametrize("name", sorted(PROJECT_SERVICES))
def test_paths_in_commands_and_environment_are_mounted_and_exist(name: str) -> None:
    service = PROJECT_SERVICES[name]
    for path in _referenced_paths(service):
        origin = _host_path(service, path)
        assert origin is not None, f"{name}: {path} is on no mount; it would not be shared or kept"
        if isinstance(origin, Path):
            assert origin.exists(), f"{name}: {path} comes from {origin}, which is not in the repository"


def test_named_volume_mount_points_are_made_writable_in_the_image() -> None:
    """A new named volume copies the image directory it is mounted on (owner included); one the image lacks
    starts root-owned, and the airflow user could not write staging or the shop there."""
    dockerfile = DOCKERFILE.read_text()
    for name, svc in PROJECT_SERVICES.items():
        for source, target in _mounts(svc):
            if _is_bind(source) or target == "/opt/airflow/logs":  # the base image has the logs folder
                continue
            assert re.search(rf"mkdir -p [^\n]*{re.escape(target)}\b", dockerfile), (
                f"{name}: volume {source} at {target}: the Dockerfile does not create that folder"
            )
            assert re.search(rf"chown airflow[^\n]*{re.escape(target)}\b", dockerfile), (
                f"{name}: volume {source} at {target}: the Dockerfile does not give it to the airflow user"
            )


def test_staging_is_one_volume_every_airflow_component_mounts() -> None:
    staging = {_env(svc).get("AIRFLOW_OMNISEND_STAGING") for svc in PROJECT_SERVICES.values()}
    assert None not in staging, "a project service lacks AIRFLOW_OMNISEND_STAGING"
    assert len(staging) == 1, f"AIRFLOW_OMNISEND_STAGING differs between services: {staging}"
    (path,) = staging
    for name, svc in PROJECT_SERVICES.items():
        if any(
            argv[:2] == ["airflow", c.split()[0]]
            for argv in service_commands(svc)
            for c in AIRFLOW_COMPONENTS
        ):
            assert _host_path(svc, str(path)) == "volume", f"{name}: staging {path} is not a shared volume"


# -- commands -----------------------------------------------------------------------------------------------


def test_airflow_omnisend_subcommands_and_flags_exist() -> None:
    runs = _commands_of("airflow-omnisend")
    assert {args[0] for _svc, args in runs} >= {"emulator", "sample-store"}
    for _svc, args in runs:
        assert args[0] in COMMANDS, f"airflow-omnisend has no subcommand {args[0]!r} (cli.COMMANDS)"
        _omnisend_args(args[0], args[1:])


def test_airflow_subcommands_parse() -> None:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    runs = _commands_of("airflow")
    ran = {" ".join(args[:2]) if args[0] == "celery" else args[0] for _svc, args in runs}
    assert ran >= set(AIRFLOW_COMPONENTS), f"the compose file does not run every component: {ran}"
    documented = [args for _svc, args in _header_commands()]
    for _svc, args in [*runs, *(("header comment", a) for a in documented)]:
        try:
            namespace = parser.parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"`airflow {shlex.join(args)}` ({_svc}): rejected by Airflow's CLI parser ({exc})")
        assert callable(namespace.func)


# -- configuration ------------------------------------------------------------------------------------------


def test_connections_parse_and_the_omnisend_one_reaches_the_emulator() -> None:
    from airflow_omnisend.hooks._profile import OmnisendConnectionSettings

    conns = _connections()
    emulator = _emulator_args()
    emulator_service = next(n for n, a in ALL_COMMANDS if a[:2] == ["airflow-omnisend", "emulator"])
    omnisend = {cid: c for cid, c in conns.items() if c.get("conn_type") == "omnisend"}
    assert omnisend, "no omnisend connection is preset"
    for conn_id, conn in omnisend.items():
        settings = OmnisendConnectionSettings.from_connection_fields(
            host=conn.get("host"), extra=conn.get("extra"), port=conn.get("port"), conn_id=conn_id
        )
        assert settings.base_url.rstrip("/") == f"http://{emulator_service}:{emulator.port}"
        assert conn.get("password") == emulator.api_key, f"{conn_id}: not the emulator's --api-key"


def test_stores_file_pools_connections_and_sample_store_agree() -> None:
    envs = {_env(svc).get("AIRFLOW_OMNISEND_STORES") for svc in PROJECT_SERVICES.values()}
    assert envs == {"/opt/airflow/dags/stores.yaml"}, f"AIRFLOW_OMNISEND_STORES differs: {envs}"
    assert _host_path(PROJECT_SERVICES["airflow-scheduler"], "/opt/airflow/dags/stores.yaml") == STORES_FILE
    dags_mount = _host_path(PROJECT_SERVICES["airflow-scheduler"], "/opt/airflow/dags")
    assert isinstance(dags_mount, Path)
    assert (dags_mount / "omnisend_orders.py").is_file(), "the mounted dags folder lacks omnisend_orders.py"
    conns = _connections()
    pools = {args[2] for _svc, args in _commands_of("airflow") if args[:2] == ["pools", "set"]}
    shops = {str(a.db): a for a in _sample_store_args()}
    for store in _stores():
        sid = store["store_id"]
        assert store.get("pool", f"omnisend_{sid}") in pools, f"{sid}: its pool is not created by init"
        assert store["omnisend_conn_id"].lower() in conns, f"{sid}: no AIRFLOW_CONN_ for omnisend_conn_id"
        source = conns.get(str(store.get("source_conn_id", "")).lower())
        assert source is not None, f"{sid}: no AIRFLOW_CONN_ for source_conn_id"
        shop = shops.get(str(source.get("host")))
        assert shop is not None, (
            f"{sid}: the source database {source.get('host')} is not made by sample-store"
        )
        assert shop.timezone == store["timezone"], f"{sid}: sample store and store timezones differ"
        assert str(shop.start) <= str(store["start_date"]), f"{sid}: store starts before the sample data"
    # the backfill the header comment suggests runs an unpaused store DAG over days the sample store has
    dag_ids = {f"omnisend_orders__{s['store_id']}" for s in _stores()}
    commands = _header_commands()
    backfills = [args for _svc, args in commands if args[:2] == ["backfill", "create"]]
    assert backfills, "the header comment shows no backfill"
    for service, _args in commands:
        assert service in SERVICES, f"header comment execs into {service!r}, which is not a service"
    for args in backfills:
        options = dict(zip(args[2::2], args[3::2], strict=False))
        dag_id, first, last = options["--dag-id"], options["--from-date"], options["--to-date"]
        assert dag_id in dag_ids, f"header comment backfills {dag_id}, which no store in {STORES_FILE} makes"
        unpause = ["dags", "unpause", dag_id]
        before = [a for _svc, a in commands[: [a for _s, a in commands].index(args)]]
        assert unpause in before, f"the header backfills {dag_id} without unpausing it first (it never runs)"
        days = [str(a.start) for a in shops.values()]
        assert first <= last, f"header comment backfills an empty range {first}..{last}"
        assert any(first >= day for day in days), f"backfill {first}..{last} starts before the sample data"


def test_components_share_the_execution_api_broker_and_database_services() -> None:
    env = _env(PROJECT_SERVICES["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    api_service = next(n for n, a in ALL_COMMANDS if a == ["airflow", "api-server"])
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://{api_service}:8080/execution/"
    assert "redis" in SERVICES
    assert "@redis:" in env["AIRFLOW__CELERY__BROKER_URL"]
    assert "postgres" in SERVICES
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    secrets = {_env(svc).get("AIRFLOW__API_AUTH__JWT_SECRET") for svc in PROJECT_SERVICES.values()}
    assert None not in secrets, "a project service lacks AIRFLOW__API_AUTH__JWT_SECRET"
    assert len(secrets) == 1, "every component needs the same JWT secret"


def test_every_pool_counts_deferred_sends() -> None:
    """Sends defer (a 429's wait, a batch being processed): a pool that did not count deferred tasks would
    let more of a brand's sends run than its rate budget has room for. Compose and the README create each
    pool with ``--include-deferred``."""
    compose_pools = [args for _svc, args in _commands_of("airflow") if args[:2] == ["pools", "set"]]
    assert compose_pools, "compose creates no pool"
    for args in compose_pools:
        assert "--include-deferred" in args, f"compose: `airflow {' '.join(args)}` lacks --include-deferred"
    readme = (REPO / "README.md").read_text("utf-8")
    readme_pools = [line for line in readme.splitlines() if "airflow pools set" in line]
    assert readme_pools, "the README shows no `airflow pools set`"
    for line in readme_pools:
        assert "--include-deferred" in line, f"README: {line.strip()!r} lacks --include-deferred"
