"""Prometheus metrics of one server (`GET /metrics`), on a registry of its own so that
several servers (tests, benchmarks) can live in one process."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    def __init__(self, runtime: Any) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "llmos_requests", "HTTP requests by route and status code", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "llmos_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_inputs = Histogram(
            "llmos_batch_inputs",
            "Inputs per batch run by a base model",
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_groups = Histogram(
            "llmos_batch_deployments",
            "Deployments (adapters) per batch",
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        Gauge("llmos_queue_depth", "Requests waiting in batch queues", registry=registry).set_function(
            runtime.batcher.depth
        )
        Gauge(
            "llmos_generations_in_flight", "Chat and completion requests running", registry=registry
        ).set_function(lambda: runtime.generations)
        for key, doc in (
            ("base_models", "Shared base models in memory"),
            ("whole_models", "Models in memory that share no base"),
            ("model_bytes", "Bytes of resident base and whole models"),
            ("adapters", "Adapters paged in"),
            ("adapter_bytes", "Bytes of paged-in adapters and their heads"),
            ("adapter_budget_bytes", "The adapter memory budget"),
            ("adapter_loads", "Adapter loads since start (reloads included)"),
            ("adapter_evictions", "Adapter evictions since start"),
        ):
            Gauge(f"llmos_{key}", doc, registry=registry).set_function(
                lambda key=key: runtime.pager.stats()[key]  # type: ignore[misc]
            )
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and friends
        runtime.observers.append(self.observe_batch)

    def observe_batch(self, inputs: int, groups: int) -> None:
        self.batch_inputs.observe(inputs)
        self.batch_groups.observe(groups)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
