"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

``package-name`` must equal the distribution name in pyproject.toml, or every ``airflow`` command crashes.
Connection form fields are declared here (``conn-fields`` / ``ui-field-behaviour``) so the UI reads them
without importing the hook.

The description is plain text: Admin > Providers shows it after deleting every backtick, underscore and
angle bracket (3.3's ``_remove_rst_syntax``), so an RST link would show as its bare words and URL. That
page's documentation link is not from here: it is pyproject's ``[project.urls] Documentation``.
"""

from __future__ import annotations

from typing import Any

INTEGRATION = "Omnisend"
#: Omnisend's guide to importing historic orders: what this provider automates
HISTORIC_ORDERS_GUIDE = "https://api-docs.omnisend.com/docs/how-to-sync-historic-orders"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-omnisend",
        "name": "Omnisend",
        "description": "Backfill a shop's historic order events into Omnisend through its batches API, "
        "period by period, with no automation firing on them: every event is accepted, rejected with "
        "its reasons or dead-lettered, and each period has a report.",
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": HISTORIC_ORDERS_GUIDE,
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_omnisend.hooks.omnisend",
                    "airflow_omnisend.hooks.omnisend_async",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_omnisend.operators.partition",
                    "airflow_omnisend.operators.extract",
                    "airflow_omnisend.operators.select_events",
                    "airflow_omnisend.operators.validate",
                    "airflow_omnisend.operators.safety",
                    "airflow_omnisend.operators.approval",
                    "airflow_omnisend.operators.plan",
                    "airflow_omnisend.operators.send",
                    "airflow_omnisend.operators.report",
                    "airflow_omnisend.operators.import_request",
                ],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_omnisend.sensors.batch"]}],
        "triggers": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_omnisend.triggers.batches"]}
        ],
        "extra-links": [
            "airflow_omnisend.operators.links.OmnisendPeriodReportLink",
            "airflow_omnisend.operators.links.OmnisendStoreDashboardLink",
            "airflow_omnisend.operators.links.OmnisendAutomationsLink",
        ],
        "asset-uris": [{"schemes": ["omnisend"], "handler": "airflow_omnisend.assets.normalize_uri"}],
        "connection-types": [
            {
                "hook-class-name": "airflow_omnisend.hooks.omnisend.OmnisendHook",
                "hook-name": "Omnisend",
                "connection-type": "omnisend",
                "ui-field-behaviour": {
                    # the port stays visible: Airflow 3.3.2's Test button sends a blank port as 0
                    # and refuses it against the stored NULL (README, "Test button")
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {
                        "host": "API root URL",
                        "password": "API key or bearer token",
                        "port": "Port (443 for https; the Test button needs it)",
                    },
                    "placeholders": {"host": "https://api.omnisend.com", "port": "443"},
                },
                "conn-fields": {
                    "api_version": {
                        "label": "API version",
                        "description": "v5 (/v5/..., X-API-KEY, up to 1,000 items per batch) or 2026-03-15 "
                        "(/api/..., Omnisend-Version header, up to 100 items per batch).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["v5", "2026-03-15", None],
                            "default": "v5",
                        },
                    },
                    "auth": {
                        "label": "Authentication",
                        "description": "api_key: the password is an API key. bearer: the password is an "
                        "OAuth access token.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["api_key", "bearer", None],
                            "default": "api_key",
                        },
                    },
                    "max_items_per_batch": {
                        "label": "Max items per batch",
                        "description": "Override the API version's item limit (lower only makes sense).",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
                    },
                    "max_payload_bytes": {
                        "label": "Max request body bytes",
                        "description": "Largest serialized batch body sent (Omnisend's guide: at most 1 MB).",
                        "schema": {"type": ["integer", "null"], "minimum": 1024, "default": 1000000},
                    },
                    "allow_http": {
                        "label": "Allow plain http",
                        "description": "Only for an Omnisend emulator on a private network (e.g. docker "
                        "compose). Loopback hosts never need it; api.omnisend.com always needs https.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "strict_reconciliation": {
                        "label": "Strict reconciliation",
                        "description": "Read every ended batch's items (one more GET per body). Default "
                        "(off): a batch whose counters say every item finished without error is accepted "
                        "without reading its items.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Per-request timeout; HttpHook has none by default.",
                        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
                    },
                    "retry_budget": {
                        "label": "Retry budget (seconds)",
                        "description": "Longest one API call keeps retrying 429, 5xx and timeouts, waits "
                        "included (default 300); the task's own retries come after it.",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "brand_budget": {
                        "label": "Brand budget",
                        "description": "How the senders of this API key share its pace and any 429's retry "
                        "time: file (every process of one machine, default), redis (every worker machine) "
                        "or process.",
                        "schema": {"type": ["string", "null"], "enum": ["file", "redis", "process", None]},
                    },
                    "brand_budget_dir": {
                        "label": "Brand budget directory",
                        "description": "Directory of the file budget; every task process must write it.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "brand_budget_redis_url": {
                        "label": "Brand budget Redis URL",
                        "description": "Redis of the redis budget (default: the Celery broker if redis://).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "brand_budget_per_minute": {
                        "label": "Brand requests per minute",
                        "description": "Requests all senders of the brand may start per sliding minute.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 400},
                    },
                },
            }
        ],
    }
