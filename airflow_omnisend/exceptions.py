"""One small exception tree for the provider.

Everything the provider raises on purpose derives from :class:`OmnisendError`, so a DAG author can
catch the provider's failures in one place and a ``retry_policy`` can tell a rate limit from a bad
API key by type instead of by parsing a message. The module imports nothing from Airflow: the
domain layer (``events/``) and the CLI raise these too, and must stay importable without Airflow.

API errors carry what a caller needs to decide what to do next: the HTTP ``status``, Omnisend's
problem detail (``problem``, including the field errors of a 400) and the ``retry_after`` time the
server named. Their text never contains the API key (the hook never puts it into a message).
"""

from __future__ import annotations

from typing import Any


class OmnisendError(Exception):
    """Root of every error this provider raises on purpose."""


class OmnisendConfigError(OmnisendError, ValueError):
    """A connection, stores file, operator argument or run conf is unusable; the message says which and how
    to fix it."""


class OmnisendInputError(OmnisendError, ValueError):
    """An input file or source row set cannot be read at all (not: one bad event, which is rejected)."""


class OmnisendStagingWriteError(OmnisendError):
    """A staging file could not be written (no space left, quota, read-only volume...). Nothing partial
    is left under the file's name: writes go to a temporary name that is renamed only when complete.

    :param path: the staging file that was being written.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_staging_write, (self.args[0] if self.args else "", self.path))


def _rebuild_staging_write(message: str, path: str) -> OmnisendStagingWriteError:
    return OmnisendStagingWriteError(message, path=path)


class OmnisendAPIError(OmnisendError):
    """Omnisend answered with an error status.

    :param status: the HTTP status code.
    :param problem: Omnisend's problem detail (RFC 9457 body, or the v5 ``{"error", "fields"}`` body), or
        ``{"detail": <truncated text>}`` when the body was not JSON.
    :param retry_after: seconds the server asked us to wait, when it named a time.
    :param request: ``"<METHOD> <path>"`` of the failed request (never the query string or headers).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem: dict[str, Any] = problem or {}
        self.retry_after = retry_after
        self.request = request

    @property
    def detail(self) -> str | None:
        """The human-readable part of the problem detail, when there is one."""
        for key in ("detail", "error", "title"):
            value = self.problem.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        """Field errors of a validation problem (``errors[]`` in 2026, ``fields`` in v5)."""
        errors = self.problem.get("errors")
        if isinstance(errors, list):
            return [e for e in errors if isinstance(e, dict)]
        fields = self.problem.get("fields")
        if isinstance(fields, dict):
            return [{"field": k, "message": v} for k, v in fields.items()]
        return []

    def __str__(self) -> str:
        text = super().__str__()
        parts = [text]
        if self.request and self.request not in text:
            parts.append(f"request: {self.request}")
        if self.detail and self.detail not in text:
            parts.append(f"Omnisend said: {self.detail}")
        if self.field_errors:
            fields = "; ".join(
                f"{e.get('field', '?')}: {e.get('message', e.get('code', ''))}"
                for e in self.field_errors[:10]
            )
            parts.append(f"fields: {fields}")
        if self.retry_after is not None:
            parts.append(f"retry after {self.retry_after:g}s")
        return " | ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default pickling (Celery, retry policies).
        return (
            _rebuild_api_error,
            (
                type(self),
                self.args[0] if self.args else "",
                self.status,
                self.problem,
                self.retry_after,
                self.request,
            ),
        )


def _rebuild_api_error(
    cls: type[OmnisendAPIError],
    message: str,
    status: int,
    problem: dict[str, Any],
    retry_after: float | None,
    request: str | None,
) -> OmnisendAPIError:
    return cls(message, status=status, problem=problem, retry_after=retry_after, request=request)


class OmnisendAuthError(OmnisendAPIError):
    """401 or 403: the key or token is wrong, or lacks a permission. Retrying does not help."""


class OmnisendValidationError(OmnisendAPIError):
    """400 (or 422): Omnisend refused the request body; ``field_errors`` says why."""


class OmnisendNotFoundError(OmnisendAPIError):
    """404: the batch or endpoint does not exist (batches are kept about 7 days; the API version may lack
    the endpoint)."""


class OmnisendPayloadTooLargeError(OmnisendAPIError):
    """413: the request body is over Omnisend's size limit."""


class OmnisendRateLimitError(OmnisendAPIError):
    """429 that outlasted the hook's retry budget; ``retry_after`` is the server's last word."""


class OmnisendServerError(OmnisendAPIError):
    """5xx that outlasted the hook's retry budget."""


class OmnisendTransportError(OmnisendError):
    """No usable HTTP response: connection refused or dropped, or a timeout, after the retry budget."""


class OmnisendResponseLostError(OmnisendTransportError):
    """A POST whose body was (or may have been) sent, but whose response never arrived.

    Omnisend may have accepted the batch. The hook never resubmits such a body by itself; the caller
    decides (a historic-event batch is safe to resubmit, Omnisend de-duplicates on eventID + eventTime).
    """


class OmnisendOrphanedTaskError(OmnisendError):
    """The task's Airflow supervisor process died while the task went on: nobody would record what it
    submits next, and the retry Airflow schedules would submit the same body again, so it stops."""


class OmnisendBatchStoppedError(OmnisendError):
    """Omnisend stopped a batch for too many item errors."""

    def __init__(self, message: str, *, batch_id: str) -> None:
        super().__init__(message)
        self.batch_id = batch_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_stopped, (self.args[0] if self.args else "", self.batch_id))


def _rebuild_stopped(message: str, batch_id: str) -> OmnisendBatchStoppedError:
    return OmnisendBatchStoppedError(message, batch_id=batch_id)


class OmnisendPartitionHeldError(OmnisendError):
    """The automation safety check holds a partition back: nothing of it is planned or sent.

    The message's first line is a short verdict a person reads first (Airflow's log view shows a line
    cut at the window's width); the detail follows on the next lines.
    """

    @property
    def headline(self) -> str:
        """The first line of the message: the short verdict."""
        return str(self).partition("\n")[0]


class OmnisendAutomationRiskError(OmnisendPartitionHeldError):
    """An enabled automation could message customers from the imported events, or the check could not be
    made. Only an explicit ``acknowledge_automations`` reason gets past it."""


class OmnisendAutomationCheckUnavailableError(OmnisendPartitionHeldError):
    """Omnisend did not answer the automation check (5xx, 429 or no response after the hook's retries).

    Unlike a block, it is no verdict on the automations, so the task is retried and goes on once
    Omnisend answers. ``retry_after`` is the wait a 429 named (the retry policy takes it as the delay).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unavailable, (self.args[0] if self.args else "", self.retry_after))


def _rebuild_unavailable(message: str, retry_after: float | None) -> OmnisendAutomationCheckUnavailableError:
    return OmnisendAutomationCheckUnavailableError(message, retry_after=retry_after)


class OmnisendUnaccountedEventsError(OmnisendError):
    """The report found extracted events that were neither accepted, rejected nor dead-lettered."""


class OmnisendRejectRatioError(OmnisendError):
    """Validation rejected a larger share of a partition's events than ``max_reject_ratio`` allows: the
    source or the mapping needs a look before anything is sent (another attempt rejects the same events)."""
