"""``connector schema plan|apply``: reads the live schema, plans, and applies the plan.

:class:`Installer` reads what exists through the metadata Web API (publisher and solution by
unique name; per table its attributes and alternate keys), asks
:func:`~connector.schema.plan.plan` what is missing, and carries the steps out in
order: publisher, solution, tables, columns, relationships, keys (every component created
inside the solution through ``MSCRM.SolutionUniqueName``), then waits for the keys to become
``Active`` and publishes once. Every step is "check, then create", so a re-run after a failure
half-way reads the new live state and finishes the job; a run with nothing to do sends only
reads. Nothing is ever deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress, TaskID
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from connector.dataverse import odata
from connector.dataverse.client import DataverseClient
from connector.errors import (
    ConfigurationError,
    DataverseError,
    DataverseNotFoundError,
    DataverseUnavailableError,
)
from connector.log_config import get_logger
from connector.schema.component_installer import component_steps, read_components
from connector.schema.component_installer import send as send_component
from connector.schema.payloads import solution_payload
from connector.schema.plan import (
    COMPONENT_KINDS,
    LiveColumn,
    LiveState,
    LiveTable,
    Plan,
    Step,
    plan,
)
from connector.schema.spec import Schema, relationship_name

log = get_logger(__name__)
_BUSY = "customization"  # "Cannot start another [...] customization operation is running"


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, DataverseError) and _BUSY in exc.message.lower()


@dataclass
class ApplyReport:
    """What one ``apply`` did."""

    plan: Plan
    done: list[Step] = field(default_factory=list)
    complete: bool = False


class Installer:
    """Brings one Dataverse environment to the declared schema."""

    def __init__(
        self,
        client: DataverseClient,
        schema: Schema,
        *,
        key_timeout: float = 600.0,
        poll_interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.schema = schema
        self.key_timeout = key_timeout
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock

    # -- reading -----------------------------------------------------------------------------

    def _find_id(self, entity_set: str, id_column: str, unique_name: str) -> str | None:
        rows = self.client.query(
            entity_set, select=[id_column], filter=odata.eq("uniquename", unique_name), top=1
        )
        for row in rows:
            return str(row[id_column])
        return None

    def _get(self, path: str, query: dict[str, str | int | None] | None = None) -> Any:
        return self.client.request("GET", path, query=query, strong_consistency=True).json()

    def _live_table(self, logical_name: str) -> LiveTable | None:
        entity = f"EntityDefinitions(LogicalName='{logical_name}')"
        try:
            attributes = self._get(f"{entity}/Attributes")
        except DataverseNotFoundError:
            return None
        columns = {str(a["LogicalName"]): _live_column(a) for a in attributes.get("value", [])}
        declared = self.schema.table(logical_name)
        if any(c.type == "choice" for c in declared.columns):
            picklists = self._get(
                f"{entity}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                {"$expand": "OptionSet"},
            )
            for item in picklists.get("value", []):
                name = str(item["LogicalName"])
                columns[name] = _live_column({**item, "MaxLength": None})
        keys = self._get(f"{entity}/Keys", {"$select": "SchemaName,EntityKeyIndexStatus"})
        statuses = {
            str(k["SchemaName"]): str(k.get("EntityKeyIndexStatus") or "Pending")
            for k in keys.get("value", [])
        }
        return LiveTable(columns=columns, keys=statuses)

    def read_live(self) -> LiveState:
        """What exists now: publisher, solution, our tables with their columns and keys."""
        tables: dict[str, LiveTable] = {}
        relationships: set[str] = set()
        for table in self.schema.tables:
            live = self._live_table(table.logical_name)
            if live is None:
                continue
            tables[table.logical_name] = live
            relationships |= {
                relationship_name(table, c) for c in table.lookups if c.logical_name in live.columns
            }
        return LiveState(
            publisher_id=self._find_id(
                "publishers", "publisherid", self.schema.publisher.unique_name
            ),
            solution_id=self._find_id("solutions", "solutionid", self.schema.solution.unique_name),
            tables=tables,
            relationships=frozenset(relationships),
        )

    def plan(self) -> Plan:
        """The steps ``apply`` would carry out now: tables first, then the solution
        components (views, forms, app, roles), then one publish."""
        tables = plan(self.schema, self.read_live())
        if self.schema.components is None:
            return tables
        extra = tuple(
            component_steps(self.schema, read_components(self.client, self.schema.components))
        )
        publish = tuple(s for s in tables.steps if s.action == "publish")
        rest = tuple(s for s in tables.steps if s.action != "publish")
        return Plan(rest + extra + publish, tables.notes)

    # -- applying ----------------------------------------------------------------------------

    def apply(
        self, *, progress: Progress | None = None, max_steps: int | None = None
    ) -> ApplyReport:
        """Carry out the plan; ``max_steps`` stops early (a deliberate interruption, tests)."""
        report = ApplyReport(self.plan())
        changes = [s for s in report.plan.steps if s.action != "wait"]
        waits = [s for s in report.plan.steps if s.action == "wait"]
        task = progress.add_task("Applying schema", total=len(changes)) if progress else None
        publisher_id = None
        for step in changes:
            if max_steps is not None and len(report.done) >= max_steps:
                log.info("schema_apply_stopped", after=len(report.done))
                return report
            if step.action == "publish" and waits:
                self._wait_for_keys(waits, progress)
            if progress is not None and task is not None:
                progress.update(task, description=f"{step.action} {step.kind} {step.name}")
            publisher_id = self._run(step, publisher_id)
            report.done.append(step)
            if progress is not None and task is not None:
                progress.advance(task)
        if waits and not any(s.action == "publish" for s in changes):
            self._wait_for_keys(waits, progress)
        report.complete = True
        return report

    def _run(self, step: Step, publisher_id: str | None) -> str | None:
        log.debug("schema_step", action=step.action, kind=step.kind, name=step.name)
        retrying = Retrying(
            retry=retry_if_exception(_busy),
            stop=stop_after_attempt(6),
            wait=wait_exponential(multiplier=self.poll_interval, max=60),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._send(step, publisher_id)
        return publisher_id  # pragma: no cover - Retrying either returns or raises

    def _send(self, step: Step, publisher_id: str | None) -> str | None:
        solution = self.schema.solution.unique_name
        if step.kind == "publisher":
            return self.client.create("publishers", step.body or {})
        if step.kind == "solution":
            owner = publisher_id or self._find_id(
                "publishers", "publisherid", self.schema.publisher.unique_name
            )
            if owner is None:
                raise ConfigurationError("the publisher disappeared before the solution was made")
            self.client.create("solutions", solution_payload(self.schema.solution, owner))
        elif step.kind in COMPONENT_KINDS:
            send_component(self.client, self.schema, step, solution)
        elif step.action == "publish":
            self.client.publish_xml(str((step.body or {})["ParameterXml"]))
        elif step.action == "update":
            self.client.api.send(
                "PUT", step.path, json=step.body, headers={"MSCRM.MergeLabels": "true"}
            )
        else:
            self.client.request("POST", step.path, body=step.body, solution=solution)
        return publisher_id

    def _key_statuses(self, table: str) -> dict[str, str]:
        keys = self._get(
            f"EntityDefinitions(LogicalName='{table}')/Keys",
            {"$select": "SchemaName,EntityKeyIndexStatus"},
        )
        return {
            str(k["SchemaName"]).lower(): str(k.get("EntityKeyIndexStatus") or "Pending")
            for k in keys.get("value", [])
        }

    def _wait_for_keys(self, waits: list[Step], progress: Progress | None) -> None:
        pending = {(str(s.table), s.name.lower()) for s in waits}
        task: TaskID | None = None
        if progress is not None:
            task = progress.add_task("Waiting for alternate keys", total=len(pending))
        deadline = self._clock() + self.key_timeout
        while pending:
            for table in sorted({t for t, _ in pending}):
                statuses = self._key_statuses(table)
                for t, name in sorted(pending):
                    if t != table:
                        continue
                    if statuses.get(name) == "Failed":
                        raise ConfigurationError(
                            f"alternate key {name} on {table} failed to build: remove duplicate "
                            "values, reactivate the key, and run `connector schema apply` again",
                            details={"table": table, "key": name},
                        )
                    if statuses.get(name) == "Active":
                        pending.discard((t, name))
                        if progress is not None and task is not None:
                            progress.advance(task)
            if pending and self._clock() >= deadline:
                names = ", ".join(sorted(n for _, n in pending))
                raise DataverseUnavailableError(
                    f"alternate keys still building after {self.key_timeout:.0f} s: {names}; "
                    "run `connector schema apply` again later"
                )
            if pending:
                self._sleep(self.poll_interval)


def _live_column(attribute: dict[str, Any]) -> LiveColumn:
    options = (attribute.get("OptionSet") or {}).get("Options") or []
    length = attribute.get("MaxLength")
    return LiveColumn(
        max_length=int(length) if isinstance(length, int) else None,
        options=frozenset(int(o["Value"]) for o in options if isinstance(o.get("Value"), int)),
    )
