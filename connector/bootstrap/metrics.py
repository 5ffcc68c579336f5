"""Prometheus metrics of the inbound path: journal rows by status, webhook outcomes.

The journal gauge is read when ``/metrics`` is scraped (a collector, no background job);
webhook outcomes are counted as they happen (accepted, duplicate, forged, malformed, too
large), so an operator sees a signature problem or a backlog without reading logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connector.state.journal import Journal


class JournalCollector(Collector):
    """``connector_journal_rows{status="pending|done|error"}``."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def collect(self) -> Iterator[Metric]:
        counts = self._journal.counts()
        family = GaugeMetricFamily(
            "connector_journal_rows", "Ingress journal rows by status", labels=["status"]
        )
        family.add_metric(["pending"], counts.pending)
        family.add_metric(["done"], counts.done)
        family.add_metric(["error"], counts.error)
        yield family


def webhook_counter(registry: CollectorRegistry) -> Counter:
    """``connector_webhooks_total{outcome}``."""
    return Counter(
        "connector_webhooks",
        "Inbound webhooks by outcome",
        labelnames=["outcome"],
        registry=registry,
    )


def outcome_counter(counter: Counter) -> Callable[[str], None]:
    """A function counting one outcome on ``counter`` (labelled by outcome); each outcome's
    child is looked up once, not per webhook."""
    children: dict[str, Counter] = {}

    def count(outcome: str) -> None:
        child = children.get(outcome)
        if child is None:
            child = children.setdefault(outcome, counter.labels(outcome))
        child.inc()

    return count


def event_delivery_counter(registry: CollectorRegistry) -> Counter:
    """``connector_event_deliveries_total{outcome}``: delivered, retried, dropped, gone."""
    return Counter(
        "connector_event_deliveries",
        "Event deliveries to subscribers by outcome",
        labelnames=["outcome"],
        registry=registry,
    )
