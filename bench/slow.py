"""A slow OpenAI-shaped upstream for shadow benchmarks: every answer takes SECONDS.

    python -m bench.slow PORT SECONDS
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .upstream import completion_body, stream_body


def app(seconds: float) -> Starlette:
    async def answer(request: Request) -> Response:
        body = await request.body()
        await asyncio.sleep(seconds)
        if b'"stream":true' in body.replace(b" ", b""):
            return Response(stream_body(), media_type="text/event-stream")
        return Response(completion_body(), media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


if __name__ == "__main__":
    uvicorn.run(app(float(sys.argv[2])), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                backlog=4096, limit_concurrency=None)
