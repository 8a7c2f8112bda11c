"""Prometheus metrics, one registry per app (no module-level state).

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by the workers: every worker then writes its samples there
and ``/metrics`` sums them, whichever worker answers the scrape. Requests
are counted in batches (see :mod:`app.ops.recorder`): the worker answering a
scrape counts its own latest requests first, the others' reach the directory
within a second.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from .fidelity import FidelityRecord
from .usage import Completed


class _RouteChildren(NamedTuple):
    duration: Any
    ttfb: Any
    prompt_tokens: Any
    completion_tokens: Any
    streams: Any


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("persona_proxy_requests", "Requests answered, by API and outcome.",
                                ["route", "kind", "stream", "status", "api", "client"], registry=r)
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
        labels = ["route", "target", "role"]
        self.fidelity_replies = Counter("persona_proxy_fidelity_replies", "Replies measured for live fidelity.",
                                        labels, registry=r)
        self.fidelity_in_script = Counter("persona_proxy_fidelity_in_script",
                                          "Measured replies in the training data's script.", labels, registry=r)
        self.fidelity_with_markers = Counter("persona_proxy_fidelity_with_markers",
                                             "Measured replies using at least one persona marker.", labels,
                                             registry=r)
        self.fidelity_breaks = Counter("persona_proxy_fidelity_breaks",
                                       "Measured replies that break character.", labels, registry=r)
        self.fidelity_dropped = Counter("persona_proxy_fidelity_dropped",
                                        "Replies not measured because the measuring queue was full.", ["route"],
                                        registry=r)
        self.shadow_skipped = Counter("persona_proxy_shadow_skipped",
                                      "Sampled requests not shadowed because the shadow was at max_in_flight.",
                                      ["route", "target"], registry=r)
        self.limited = Counter("persona_proxy_limited", "Requests refused by a client's limit.",
                               ["client", "limit", "party"], registry=r)
        self.limits_store_errors = Counter(
            "persona_proxy_limits_store_errors", "Requests admitted (open) or refused (closed) because the limits "
            "store did not answer.", ["mode"], registry=r)
        # labels() locks and hashes every time: each route's children are looked up once, then kept.
        self._route_children: dict[str, _RouteChildren] = {}

    def observe_all(self, records: Sequence[Completed]) -> None:
        """Count a batch of completed requests: each counter moves once per batch, not per request."""
        requests: collections.Counter[tuple[str, str, bool, int, str, str]] = collections.Counter()
        prompt: collections.Counter[str] = collections.Counter()
        completion: collections.Counter[str] = collections.Counter()
        for done in records:
            route = done.route
            requests[route, done.kind, done.stream, done.status, done.api, done.client or ""] += 1
            if done.kind == "shadow":
                # Tokens a shadow spends are counted; its latency and errors are nobody's experience.
                prompt[route] += done.prompt_tokens or 0
                completion[route] += done.completion_tokens or 0
                continue
            # Histograms have no bulk update: one observe per request, in a warm loop at least.
            children = self._children(route)
            children.duration.observe(done.duration_ms / 1000)
            if done.ttfb_ms is not None:
                children.ttfb.observe(done.ttfb_ms / 1000)
            if done.prompt_tokens:
                prompt[route] += done.prompt_tokens
            if done.completion_tokens:
                completion[route] += done.completion_tokens
            if done.error_code:
                self.errors.labels(route, done.error_code).inc()
            if done.failover:
                self.failovers.labels(route).inc()
        for (route, kind, stream, status, api, client), count in requests.items():
            self.requests.labels(route, kind, "yes" if stream else "no", str(status), api, client).inc(count)
        for route, count in prompt.items():
            self._children(route).prompt_tokens.inc(count)
        for route, count in completion.items():
            self._children(route).completion_tokens.inc(count)

    def observe_fidelity(self, records: Sequence[FidelityRecord]) -> None:
        """Count a batch of measured replies, one increment per label set."""
        counts: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        for done in records:
            labels = (done.route, done.target, done.role)
            counts[(*labels, "replies")] += 1
            counts[(*labels, "in_script")] += done.in_script
            counts[(*labels, "markers")] += bool(done.markers)
            counts[(*labels, "breaks")] += done.breaks
        counters = {"replies": self.fidelity_replies, "in_script": self.fidelity_in_script,
                    "markers": self.fidelity_with_markers, "breaks": self.fidelity_breaks}
        for (route, target, role, kind), count in counts.items():
            # Every label set of a measured target shows, at 0 too: a rate of breaks needs its zero.
            counters[kind].labels(route, target, role).inc(count)

    def streams_of(self, route: str) -> Any:
        """The in-flight streams gauge of a route."""
        return self._children(route).streams

    def _children(self, route: str) -> _RouteChildren:
        children = self._route_children.get(route)
        if children is None:
            children = self._route_children[route] = _RouteChildren(
                self.duration.labels(route), self.ttfb.labels(route),
                self.tokens.labels(route, "prompt"), self.tokens.labels(route, "completion"),
                self.streams.labels(route))
        return children

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)
