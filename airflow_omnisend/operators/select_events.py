"""OmnisendSelectEventsOperator: keep only the event names a store imports (``events`` in the stores file).

It sits between extract and validate in the DAG of a store that imports a subset of the five order
events. Lines that are not JSON or carry no ``eventName`` are kept: they are not this step's to judge,
and validation rejects them with a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import orjson

from airflow_omnisend.events.lines import LineTooLongError, capped_lines
from airflow_omnisend.events.names import EVENT_NAMES
from airflow_omnisend.exceptions import OmnisendConfigError
from airflow_omnisend.operators._failures import input_failure
from airflow_omnisend.operators.base import OmnisendPartitionBaseOperator

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

__all__ = ["SELECTED_EVENTS_FILE", "OmnisendSelectEventsOperator"]

#: the selected events, next to ``events.ndjson`` in the partition's folder
SELECTED_EVENTS_FILE: Final = "events_selected.ndjson"


def _lines(src: Any, what: str) -> Any:
    """The lines of ``src``; a line over the cap ends the task at once (no retry reads it shorter)."""
    try:
        yield from capped_lines(src, what=what)
    except LineTooLongError as exc:
        raise input_failure(what, exc) from exc


class OmnisendSelectEventsOperator(OmnisendPartitionBaseOperator):
    """Keep only the store's event names from ``events.ndjson``.

    Writes ``events_selected.ndjson`` next to it and returns its URL, which the validate step reads
    (``events_path``); the report then counts the selected events as the partition's events.

    ``store_id``, ``partition``, ``staging``: see :class:`OmnisendPartitionBaseOperator`.

    :param event_names: the names to keep: a non-empty subset of the five order event names.
    :param extracted: the extract task's manifest (``extract.output``): its ``events`` file is read,
        and the selection written into its folder. Templated.
    """

    template_fields: Sequence[str] = (*OmnisendPartitionBaseOperator.template_fields, "extracted")

    def __init__(
        self,
        *,
        event_names: Sequence[str],
        extracted: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.event_names = tuple(event_names)
        self.extracted = extracted
        unknown = set(self.event_names) - set(EVENT_NAMES)
        if unknown or not self.event_names:
            raise OmnisendConfigError(
                f"event_names must be a non-empty subset of {EVENT_NAMES}, got {event_names!r}"
            )

    def execute(self, context: Context) -> str:
        partition = self.partition_staging(self.extracted)
        events = self.upstream_file(partition, self.extracted, "events")
        wanted = {name.encode() for name in self.event_names}
        target = partition.dir / SELECTED_EVENTS_FILE
        kept = dropped = 0
        with (
            partition.local_copy(events) as local,
            open(local, "rb") as src,
            partition.open_write(target) as out,
        ):
            for line in _lines(src, str(events)):
                if not line.strip():
                    continue
                try:
                    name = orjson.loads(line).get("eventName")
                except (orjson.JSONDecodeError, AttributeError):
                    name = None  # not ours to judge: validation rejects it with a reason
                if name is None or str(name).encode() in wanted:
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    kept += 1
                else:
                    dropped += 1
        self.log.info(
            "%s %s: kept %d events named %s, left out %d others -> %s",
            self.store_id,
            self.partition,
            kept,
            ", ".join(self.event_names),
            dropped,
            target,
        )
        return str(target)
