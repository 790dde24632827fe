"""An auth manager for the dashboard's end-to-end test: Airflow's SimpleAuthManager, except that the
users named in ``AIRFLOW_OMNISEND_DENIED_USERS`` (comma-separated) may read no DAG.

SimpleAuthManager lets every role read every DAG, so without this a test could not show a logged-in
user being refused. Set ``[core] auth_manager`` to
``airflow_omnisend.testing.dashboard_auth.DenyingAuthManager``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

__all__ = ["DENIED_USERS_ENV", "DenyingAuthManager"]

DENIED_USERS_ENV = "AIRFLOW_OMNISEND_DENIED_USERS"


def denied_users() -> set[str]:
    return {name.strip() for name in os.environ.get(DENIED_USERS_ENV, "").split(",") if name.strip()}


class DenyingAuthManager(SimpleAuthManager):
    """SimpleAuthManager that refuses every DAG to the users in ``AIRFLOW_OMNISEND_DENIED_USERS``."""

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if user.get_name() in denied_users():
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
