"""The bare relay: the least a Starlette + aiohttp proxy can do, as the yardstick for persona-proxy.

    python -m bench.bare --port 9000 --upstream http://127.0.0.1:8001

It passes the body upstream and the answer (whole or streamed) back, nothing else: no auth, no persona, no
model rewrite, no records. Same libraries and server as persona-proxy (uvicorn, httptools, uvloop, aiohttp).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def make_app(upstream: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=1024)
        app.state.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        yield
        await app.state.session.close()

    async def relay(request: Request) -> Response:
        body = await request.body()
        # The benchmark's stream route is "maid-stream"; everything else is the JSON route.
        prefix = "/sse" if b'"maid-stream"' in body else "/json"
        response = await request.app.state.session.post(
            f"{upstream}{prefix}{request.url.path}", data=body, headers={"content-type": "application/json"})
        if response.content_type == "text/event-stream":
            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for chunk in response.content.iter_any():
                        yield chunk
                finally:
                    response.release()

            return StreamingResponse(chunks(), response.status, media_type="text/event-stream")
        data = await response.read()
        response.release()
        return Response(data, response.status, media_type="application/json")

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    return Starlette(lifespan=lifespan, routes=[
        Route("/v1/chat/completions", relay, methods=["POST"]), Route("/v1/responses", relay, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the benchmark's nginx")
    args = parser.parse_args()
    uvicorn.run(make_app(args.upstream.rstrip("/")), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
