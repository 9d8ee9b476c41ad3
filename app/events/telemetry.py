"""Prometheus counters and histograms, labelled by bundle and version_id, updated in process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from app.events.models import ChatEvent

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
LABELS = ("bundle", "version_id")


class Telemetry:
    """One registry per app, so several apps (tests, workers) never share or clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("chatver_requests", "Chat requests by serving version", LABELS, registry=r)
        self.errors = Counter("chatver_errors", "Failed chat requests", (*LABELS, "error"), registry=r)
        self.cancelled = Counter(
            "chatver_cancelled", "Streams the client abandoned (not counted as errors)", LABELS, registry=r
        )
        self.latency = Histogram(
            "chatver_latency_seconds", "End-to-end latency", LABELS, buckets=LATENCY_BUCKETS, registry=r
        )
        self.ttft = Histogram(
            "chatver_ttft_seconds", "Time to first token of streams", LABELS, buckets=TTFT_BUCKETS, registry=r
        )
        self.tokens = Counter("chatver_tokens", "Tokens by kind", (*LABELS, "kind"), registry=r)
        self.cost = Counter(
            "chatver_cost_usd", "Provider cost in USD (LiteLLM's price map)", LABELS, registry=r
        )
        self.events_dropped = Counter(
            "chatver_events_dropped", "Chat events dropped because the write queue was full", registry=r
        )
        self.events_written = Counter("chatver_events_written", "Chat events stored", registry=r)
        self.event_write_failures = Counter(
            "chatver_event_write_failures", "Failed attempts to store a batch of chat events", registry=r
        )
        self.queue_depth = Gauge("chatver_event_queue_depth", "Chat events waiting to be stored", registry=r)

    def observe(self, event: ChatEvent) -> None:
        labels = (event.bundle, event.version_id)
        self.requests.labels(*labels).inc()
        if event.status == "error":
            self.errors.labels(*labels, event.error or "error").inc()
        elif event.status == "cancelled":
            self.cancelled.labels(*labels).inc()
        if event.latency_ms is not None:
            self.latency.labels(*labels).observe(event.latency_ms / 1000)
        if event.ttft_ms is not None:
            self.ttft.labels(*labels).observe(event.ttft_ms / 1000)
        if event.prompt_tokens:
            self.tokens.labels(*labels, "prompt").inc(event.prompt_tokens)
        if event.completion_tokens:
            self.tokens.labels(*labels, "completion").inc(event.completion_tokens)
        if event.cost:
            self.cost.labels(*labels).inc(event.cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)
