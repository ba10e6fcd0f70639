"""The publisher's Prometheus metrics, on the service's registry (`GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "community_uploads_sent_total",
            "Upload requests sent to the community site (every attempt)",
            registry=registry,
        )
        self.retried = Counter(
            "community_uploads_retried_total",
            "Upload attempts that failed and were tried again",
            registry=registry,
        )
        self.published = Counter(
            "community_uploads_published_total",
            "Requests the community site accepted",
            registry=registry,
        )
        self.failed = Counter(
            "community_uploads_failed_total",
            "Requests whose upload failed after its retries, or was refused",
            registry=registry,
        )
        self.rejected = Counter(
            "community_uploads_rejected_total",
            "Requests not sent because community sharing was off",
            registry=registry,
        )
        self.repeats = Counter(
            "community_requests_repeated_total",
            "Redelivered requests that already had an outcome (not uploaded again)",
            registry=registry,
        )
        self.latency = Histogram(
            "community_upload_duration_seconds",
            "Time of one upload attempt, until the site answered or the attempt failed",
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
