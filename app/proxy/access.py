"""The access line: one per request, at INFO, as text and as structured fields.

Written for every request at the default log level, so it is built with
f-strings over a fixed order rather than a generic join, and handed to
logging once (see :mod:`app.ops.logs` for what the handler then costs).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .planning import Plan
    from .serving import _Exchange

logger = logging.getLogger("app.proxy.serving")


def write_access_line(self: _Exchange, plan: Plan) -> None:
    """The request's access line: text for people, its fields for JSON logs (``extra``)."""
    stream = self.stream
    kind = "task" if plan.task else self.api.name
    fields: dict[str, Any] = {"kind": kind, "route": self.route.name, "target": plan.target.label,
                              "status": self.status, "stream": self.wants_stream,
                              "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
                              "api": self.api.name}
    # f-strings over a fixed order, not a generic join: this line is written for every request.
    text = (f"route={fields['route']} target={fields['target']} status={self.status} "
            f"stream={'yes' if self.wants_stream else 'no'} duration_ms={fields['duration_ms']} "
            f"api={self.api.name}")
    if stream is not None:
        ttfb = round((stream.first_byte_at - self.started) * 1000 if stream.first_byte_at else -1.0, 1)
        fields.update(events=stream.events, done=stream.done, ttfb_ms=ttfb)
        text += f" events={stream.events} done={'yes' if stream.done else 'no'} ttfb_ms={ttfb}"
    prompt, completion = self.tokens()
    if prompt is not None:
        fields["prompt_tokens"] = prompt
        text += f" prompt_tokens={prompt}"
    if completion is not None:
        fields["completion_tokens"] = completion
        text += f" completion_tokens={completion}"
    error = self.error or (stream.error if stream else None)
    for name, value in (("client", self.client_name), ("task", plan.task), ("user", plan.caller.user_id),
                        ("chat", plan.caller.chat_id), ("dropped_system", plan.dropped), ("error", error)):
        if value:
            fields[name] = value
            text += f" {name}={value!r}" if name == "error" else f" {name}={value}"
    logger.info("%s %s", kind, text, extra={"fields": fields})


def write_models_line(listed: int, client: str | None) -> None:
    """A model list's access line: a client's connection check (Open WebUI, SillyTavern, the SDKs) shows too."""
    fields: dict[str, Any] = {"kind": "models", "status": 200, "listed": listed}
    if client:
        fields["client"] = client
    logger.info("models status=200 listed=%d%s", listed, f" client={client}" if client else "",
                extra={"fields": fields})
