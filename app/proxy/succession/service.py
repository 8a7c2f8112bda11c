"""The succession service the serving hub calls: once for the plan, once after the reply.

``start`` names the conversation, picks its canary, samples the reply for
live fidelity and starts the request's shadows; ``Turn.finish`` hands the
served reply to the measurer and releases the shadows waiting for it.
Routes with no canary, no shadow and no ``dataset`` never get here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...ops.logs import REQUEST_ID
from ..apis import Api
from ..openwebui import detect_task, task_header
from ..planning import Headers
from ..routing import Route, Target
from .assign import assign, conversation_key
from .live import LiveFidelity, Reply
from .shadow import Shadows


@dataclass(slots=True, eq=False)
class Turn:
    """One chat request of a route under succession."""

    route: Route
    api: str
    stream: bool
    conversation: str
    canary: Target | None
    measure: bool  # capture and measure the served reply
    request_id: str | None
    live: LiveFidelity | None
    served: Reply | None = None
    # Made only when a shadow starts: it waits on it for the served reply to compare with.
    done: asyncio.Event | None = None

    def finish(self, target: Target | None, raw: bytes | None) -> None:
        """The request is over: ``raw`` is what its client received, None if it failed."""
        profile = self.route.profile
        if self.measure and raw is not None and target is not None and profile is not None and self.live is not None:
            self.served = Reply(time.time(), self.route.name, target.name, target.role, self.api, self.stream,
                                self.conversation, self.request_id, raw, profile)
            self.live.add(self.served)
        if self.done is not None:
            self.done.set()


class Succession:
    """Canary choice, shadow dispatch and live fidelity for the routes that have them."""

    def __init__(self, shadows: Shadows, live: LiveFidelity | None, sample: float,
                 rand: Callable[[], float] = random.random) -> None:
        self.shadows = shadows
        self.live = live
        self.sample = sample
        self._rand = rand

    def start(self, route: Route, body: dict[str, object], headers: Headers, key_id: str | None,
              api: Api) -> Turn | None:
        """The request's turn, or None for an Open WebUI task (tasks follow the route's task rules alone)."""
        messages = api.messages(body)
        if detect_task({"messages": messages}, task_header(headers)) is not None:
            return None
        key = conversation_key(headers, body, key_id, messages)
        canary, conversation = assign(route, key)
        if canary is not None and api.name == "responses" and key.startswith("first:") and chains(body):
            # A chained Responses conversation (previous_response_id, or stored for the next turn to chain on)
            # with nothing that names it: each turn's input differs, so it could not stay on a canary, and a
            # response id is only known to the upstream that made it. The primary keeps all of it.
            canary = None
        profile = route.profile
        measure = profile is not None and self.live is not None and self._rand() < self.sample
        turn = Turn(route, api.name, bool(body.get("stream")), conversation, canary, measure, REQUEST_ID.get(),
                    self.live)
        # A response id is known only to the upstream that made it: a shadow could only fail on it.
        shadowed = bool(route.shadows) and not (api.name == "responses" and body.get("previous_response_id"))
        if shadowed:
            turn.done = asyncio.Event()
        if shadowed and self.shadows.dispatch(turn, route, dict(body), headers, key_id, api):
            turn.measure = profile is not None and self.live is not None  # the shadow is compared with it
        return turn


def chains(body: dict[str, object]) -> bool:
    """Whether a Responses request continues a stored response or may be continued from this one."""
    return bool(body.get("previous_response_id")) or body.get("store") is not False
