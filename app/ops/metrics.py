"""Prometheus metrics, one registry per app (no module-level state).

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by the workers: every worker then writes its samples there
and ``/metrics`` sums them, whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from .usage import Completed

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("persona_proxy_requests", "Requests answered, by API and outcome.",
                                ["route", "kind", "stream", "status", "api"], registry=r)
        self.errors = Counter("persona_proxy_errors", "Requests that ended in an error, by error code.",
                              ["route", "code"], registry=r)
        self.duration = Histogram("persona_proxy_request_duration_seconds", "Whole request duration.",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttfb = Histogram("persona_proxy_time_to_first_byte_seconds", "Time to the first streamed event.",
                              ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("persona_proxy_tokens", "Tokens reported by upstreams.", ["route", "type"], registry=r)
        self.streams = Gauge("persona_proxy_streams_in_flight", "Streams being relayed now.", ["route"],
                             registry=r, multiprocess_mode="livesum")
        self.failovers = Counter("persona_proxy_failovers", "Requests served by a later target.", ["route"],
                                 registry=r)
        self._request_children: dict[tuple[str, str, bool, int, str], Any] = {}
        self._route_children: dict[str, tuple[Any, Any]] = {}

    def observe(self, done: Completed) -> None:
        route = done.route
        key = (route, done.kind, done.stream, done.status, done.api)
        counter = self._request_children.get(key)
        if counter is None:
            # labels() locks and hashes every time; a request's children are looked up once.
            counter = self._request_children[key] = self.requests.labels(
                route, done.kind, "yes" if done.stream else "no", str(done.status), done.api)
        counter.inc()
        if done.error_code:
            self.errors.labels(route, done.error_code).inc()
        duration, ttfb = self._route_children.get(route) or self._route_child(route)
        duration.observe(done.duration_ms / 1000)
        if done.ttfb_ms is not None:
            ttfb.observe(done.ttfb_ms / 1000)
        if done.prompt_tokens:
            self.tokens.labels(route, "prompt").inc(done.prompt_tokens)
        if done.completion_tokens:
            self.tokens.labels(route, "completion").inc(done.completion_tokens)
        if done.failover:
            self.failovers.labels(route).inc()

    def _route_child(self, route: str) -> tuple[Any, Any]:
        children = self._route_children[route] = (self.duration.labels(route), self.ttfb.labels(route))
        return children

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)
