"""A fake files + fine-tuning API: a real server that walks jobs through their states.

Each poll of ``GET /v1/fine_tuning/jobs/{id}`` answers the job's state, then
advances it one stage:
validating_files -> queued -> running (several metrics steps) -> succeeded,
or -> failed for a file whose name contains "fail". Events page newest
first with ``after`` and ``has_more``, like OpenAI's.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .servers import ServerThread

STEPS = 6


@dataclass
class Job:
    id: str
    model: str
    training_file: str
    fails: bool
    body: dict[str, Any]
    status: str = "validating_files"
    polls: int = 0
    step: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    fine_tuned_model: str | None = None
    error: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "object": "fine_tuning.job", "model": self.model, "status": self.status,
                "training_file": self.training_file, "fine_tuned_model": self.fine_tuned_model,
                "error": self.error, "method": self.body.get("method")}


class FakeFineTuning:
    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.reject_create: tuple[int, dict[str, Any]] | None = None
        self.flaky_event_polls = 0  # this many events calls answer 503 first
        self._ids = itertools.count(1)
        app = Starlette(routes=[
            Route("/v1/files", self._upload, methods=["POST"]),
            Route("/v1/fine_tuning/jobs", self._jobs, methods=["GET", "POST"]),
            Route("/v1/fine_tuning/jobs/{id}", self._job, methods=["GET"]),
            Route("/v1/fine_tuning/jobs/{id}/cancel", self._cancel, methods=["POST"]),
            Route("/v1/fine_tuning/jobs/{id}/events", self._events, methods=["GET"]),
        ])
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    def _record(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, dict(request.headers)))

    async def _upload(self, request: Request) -> Response:
        self._record(request)
        form = await request.form()
        upload = form["file"]
        assert form["purpose"] == "fine-tune"
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = (upload.filename, await upload.read())  # type: ignore[union-attr]
        return JSONResponse({"id": file_id, "object": "file", "purpose": "fine-tune",
                             "filename": upload.filename})  # type: ignore[union-attr]

    async def _jobs(self, request: Request) -> Response:
        self._record(request)
        if request.method == "GET":
            data = [job.public() for job in reversed(self.jobs.values())]
            return JSONResponse({"object": "list", "data": data[: int(request.query_params.get("limit", 20))],
                                 "has_more": False})
        if self.reject_create is not None:
            status, error = self.reject_create
            return JSONResponse({"error": error}, status)
        body = json.loads(await request.body())
        name, _ = self.files[body["training_file"]]
        job = Job(f"ftjob-{next(self._ids)}", body["model"], body["training_file"], "fail" in name, body)
        self._event(job, "info", f"Created fine-tuning job: {job.id}")
        self.jobs[job.id] = job
        return JSONResponse(job.public())

    async def _job(self, request: Request) -> Response:
        self._record(request)
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return JSONResponse({"error": {"message": "No such job", "code": "not_found"}}, 404)
        state = job.public()
        self._advance(job)  # the next poll sees the next stage
        return JSONResponse(state)

    async def _cancel(self, request: Request) -> Response:
        self._record(request)
        job = self.jobs[request.path_params["id"]]
        job.status = "cancelled"
        return JSONResponse(job.public())

    async def _events(self, request: Request) -> Response:
        self._record(request)
        if self.flaky_event_polls:
            self.flaky_event_polls -= 1
            return JSONResponse({"error": {"message": "try again"}}, 503)
        job = self.jobs[request.path_params["id"]]
        newest_first = list(reversed(job.events))
        after = request.query_params.get("after")
        if after:
            index = next(i for i, e in enumerate(newest_first) if e["id"] == after)
            newest_first = newest_first[index + 1:]
        limit = int(request.query_params.get("limit", 20))
        return JSONResponse({"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit})

    def _event(self, job: Job, level: str, message: str, data: dict[str, Any] | None = None) -> None:
        job.events.append({"id": f"ftevent-{next(self._ids)}", "object": "fine_tuning.job.event",
                           "created_at": 1764000000 + len(job.events), "level": level, "message": message,
                           "type": "metrics" if data else "message", "data": data or {}})

    def _advance(self, job: Job) -> None:
        job.polls += 1
        if job.status in ("succeeded", "failed", "cancelled"):
            return
        if job.status == "validating_files":
            if job.fails:
                job.status, job.error = "failed", {"code": "invalid_training_file", "param": "training_file",
                                                   "message": "Example 3, message 2: missing 'content'."}
                self._event(job, "error", job.error["message"])
                return
            job.status = "queued"
            self._event(job, "info", "Validating training file: done")
        elif job.status == "queued":
            job.status = "running"
            self._event(job, "info", "Fine-tuning job started")
        elif job.status == "running" and job.step < STEPS:
            # Several steps land between two polls, so events need more than one page.
            for _ in range(3):
                job.step += 1
                self._event(job, "info", f"Step {job.step}/{STEPS}: training loss={2.0 / job.step:.3f}",
                            {"step": job.step, "total_steps": STEPS, "train_loss": 2.0 / job.step})
                if job.step == STEPS:
                    break
        else:
            job.status = "succeeded"
            job.fine_tuned_model = f"ft:{job.model}:personal:{job.body.get('suffix') or ''}:AbC123"
            self._event(job, "info", f"New fine-tuned model created: {job.fine_tuned_model}")
            self._event(job, "info", "The job has successfully completed")
