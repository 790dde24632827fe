"""Airflow operators: templating, XCom manifests, deferral, retry policy. No HTTP details, no event rules."""

from __future__ import annotations
