"""The moto S3 server helper: a real process on a free port, answering before it is handed out, with
its bucket and an AWS connection; gone afterwards; a clear reason when moto_server is not installed.
(The PostgreSQL and Redis helpers are tested with the deployment they serve, in test_local_airflow.)"""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from airflow_omnisend.testing import local_servers
from airflow_omnisend.testing.local_servers import ServerUnavailableError, moto_s3_server

if TYPE_CHECKING:
    from pathlib import Path


def test_moto_server_serves_its_bucket_then_stops() -> None:
    try:
        server_cm = moto_s3_server(bucket="bucket-one")
        server = server_cm.__enter__()
    except ServerUnavailableError as exc:
        pytest.skip(f"needs moto_server: {exc}")
    try:
        parts = urlsplit(server.endpoint_url)
        assert parts.hostname == "127.0.0.1"
        assert server.keys() == []
        server.client().put_object(Bucket="bucket-one", Key="a/x.json", Body=b"{}")
        assert server.keys("a/") == ["a/x.json"]
        assert server.read("a/x.json") == b"{}"
        assert server.staging_url("/pre/") == f"s3://{server.conn_id}@bucket-one/pre"
        assert server.connection["conn_type"] == "aws"
        assert server.connection["extra"]["endpoint_url"] == server.endpoint_url
        assert list(server.env) == [f"AIRFLOW_CONN_{server.conn_id.upper()}"]
    finally:
        server_cm.__exit__(None, None, None)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((parts.hostname, parts.port or 0), timeout=2).close()


def test_missing_moto_server_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_servers.shutil, "which", lambda _name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    pattern = r"moto_server .* is not installed; pip install 'moto\[server\]'"
    with pytest.raises(ServerUnavailableError, match=pattern), moto_s3_server():
        pass
