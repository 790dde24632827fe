"""Whether the Airflow supervisor that started this task process is still alive.

Airflow 3.3 runs a task in a child that ``supervisor.py`` forks (``_fork_main``); the supervisor
heartbeats the task instance and relays the child's calls to the API server (XCom, task state store).
When the supervisor is killed (SIGKILL, OOM) the child lives on, reparented, while the scheduler
eventually fails the try and schedules a retry. A child that went on submitting would race that retry:
the retry cannot know about bodies submitted after it read the receipts. So the sender asks
:meth:`SupervisorWatch.check` before every POST and stops when its parent is no longer the process
that started it (the POST it already made is recorded in staging, which needs no supervisor).
"""

from __future__ import annotations

import os

from airflow_omnisend.exceptions import OmnisendOrphanedTaskError

__all__ = ["SupervisorWatch"]


class SupervisorWatch:
    """Remembers the parent process at the start of a task method; :meth:`check` raises once the
    parent has changed (the supervisor is gone and the process was reparented).

    :param parent_pid: the supervisor's pid (default: this process's parent now).
    """

    def __init__(self, parent_pid: int | None = None) -> None:
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid

    def orphaned(self) -> bool:
        return os.getppid() != self.parent_pid

    def check(self, what: str) -> None:
        """Raise :class:`OmnisendOrphanedTaskError` instead of submitting ``what`` when orphaned."""
        now = os.getppid()
        if now != self.parent_pid:
            raise OmnisendOrphanedTaskError(
                f"the task's supervisor process (pid {self.parent_pid}) is gone (this process's parent is "
                f"now pid {now}); {what} is not submitted. Airflow retries the task, and the retry "
                "submits it once, after the receipts of everything submitted so far"
            )
