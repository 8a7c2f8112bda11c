"""The files and fine-tuning API of any OpenAI-compatible upstream.

A small synchronous client for the CLI, and :func:`follow`, which watches a
job until it ends: status changes, a progress line from metrics events (the
events endpoint pages newest first; each event is shown once), and retries
through network blips.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class FineTuneError(Exception):
    """The provider said no; ``message`` is its own wording."""

    def __init__(self, status: int | None, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class Unreachable(FineTuneError):
    """No answer from the provider at all: refused, timed out, name not found, connection cut."""

    def __init__(self, base_url: str, exc: httpx.TransportError) -> None:
        reasons = {httpx.ConnectError: "connection failed", httpx.ConnectTimeout: "no connection within the timeout",
                   httpx.ReadTimeout: "no answer within the timeout"}
        reason = next((text for kind, text in reasons.items() if type(exc) is kind), type(exc).__name__)
        super().__init__(None, f"cannot reach {base_url} ({reason})")


class FineTuningAPI:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 60.0,
                 connect_timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 retries: int = 5, sleep: Callable[[float], None] = time.sleep) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/", headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=connect_timeout), trust_env=False)
        self._retries = retries
        self._sleep = sleep
        self.blips = 0
        # A network error is a blip worth retrying only once the provider has answered.
        self._reached = False

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if not self._reached or attempt == self._retries or "files" in kwargs:
                    raise Unreachable(self.base_url, exc) from None
                self._blip(attempt)
                continue
            self._reached = True
            if response.status_code in RETRY_STATUSES and attempt < self._retries and method == "GET":
                self._blip(attempt)
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response.json()
        raise AssertionError("unreachable")

    def _blip(self, attempt: int) -> None:
        self.blips += 1
        self._sleep(min(30.0, 0.5 * 2**attempt))

    def upload(self, path: Path) -> str:
        with path.open("rb") as fh:  # streamed from disk, never read whole
            data = self._call("POST", "files", data={"purpose": "fine-tune"},
                              files={"file": (path.name, fh, "application/jsonl")})
        return str(data["id"])

    def create_job(self, model: str, training_file: str, *, validation_file: str | None = None,
                   suffix: str | None = None, epochs: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "training_file": training_file, "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": epochs if epochs is not None else "auto"}}}}
        if validation_file:
            body["validation_file"] = validation_file
        if suffix:
            body["suffix"] = suffix
        return dict(self._call("POST", "fine_tuning/jobs", json=body))

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"fine_tuning/jobs/{job_id}"))

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self._call("GET", "fine_tuning/jobs", params={"limit": limit})["data"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"fine_tuning/jobs/{job_id}/cancel"))

    def new_events(self, job_id: str, seen: set[str], page_size: int = 50) -> list[dict[str, Any]]:
        """Events not in ``seen``, oldest first (the API pages newest first)."""
        fresh: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self._call("GET", f"fine_tuning/jobs/{job_id}/events", params=params)
            events = page.get("data") or []
            for event in events:
                if event["id"] in seen:
                    return _oldest_first(fresh, seen)
                fresh.append(event)
            if not page.get("has_more") or not events:
                return _oldest_first(fresh, seen)
            params = {"limit": page_size, "after": events[-1]["id"]}


def _oldest_first(events: list[dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    seen.update(e["id"] for e in events)
    return sorted(reversed(events), key=lambda e: e.get("created_at") or 0)


def _error(response: httpx.Response) -> FineTuneError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return FineTuneError(response.status_code, str(error.get("message") or ""), error.get("code"))
    # Not OpenAI's shape: show what the provider said, on one line and short (it may be an HTML page).
    detail = body.get("detail") or body.get("message") if isinstance(body, dict) else None
    text = str(detail if detail is not None else error if error is not None else response.text)
    text = " ".join(text.split())[:300] or "(empty body)"
    return FineTuneError(response.status_code, f"HTTP {response.status_code}: {text}")


@dataclass
class Update:
    """What one poll of a job found."""

    status: str
    status_changed: bool
    messages: list[str] = field(default_factory=list)
    step: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    new_metrics: bool = False


def follow(api: FineTuningAPI, job_id: str, *, poll_interval: float = 10.0,
           sleep: Callable[[float], None] | None = None) -> Iterator[tuple[Update, dict[str, Any]]]:
    """Poll a job until it ends, yielding what changed each time with the job's state."""
    seen: set[str] = set()
    last = Update(status="", status_changed=False)
    while True:
        job = api.job(job_id)
        status = str(job.get("status"))
        update = Update(status, status != last.status, step=last.step, total_steps=last.total_steps,
                        train_loss=last.train_loss)
        for event in api.new_events(job_id, seen):
            data = event.get("data") or {}
            if event.get("type") == "metrics" and "step" in data:
                update.step, update.total_steps = data.get("step"), data.get("total_steps")
                update.train_loss, update.new_metrics = data.get("train_loss"), True
            else:
                update.messages.append(f"[{event.get('level', 'info')}] {event.get('message', '')}")
        last = update
        yield update, job
        if status in TERMINAL:
            return
        (sleep or time.sleep)(poll_interval)
