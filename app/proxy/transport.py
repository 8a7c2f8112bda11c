"""An httpx transport backed by aiohttp's connection pool.

httpx stays the client API everywhere in the proxy; only the wire work is
done by aiohttp, whose pool holds up under concurrency where httpcore's
default pool collapses (measured in ``bench/``). aiohttp's exceptions are
mapped onto httpx's own, so callers see one exception family either way.

The pool is bounded by a semaphore held from request to response close, so
a full pool is a prompt ``httpx.PoolTimeout`` rather than a silent queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Protocol

import aiohttp
import httpx

# Most specific first: the first match wins.
_EXCEPTIONS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.ReadError),
    (ConnectionError, httpx.ReadError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, ConnectionError) as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                # The message is the exception type only: aiohttp's texts name hosts.
                raise target(type(exc).__name__) from exc
        raise


class UpstreamResponse(Protocol):
    """What the proxy reads of an upstream response: an ``httpx.Response`` or a :class:`RawResponse`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


class _Zlib:
    """A zlib decompressor whose errors are httpx's, like the rest of the transport's."""

    def __init__(self, wbits: int) -> None:
        self._inner = zlib.decompressobj(wbits)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._inner.decompress(data)
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc)) from None

    def flush(self) -> bytes:
        try:
            return self._inner.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc)) from None


def _decoder(encoding: str) -> _Zlib | None:
    # The proxy asks for identity; an upstream (or middlebox) that compresses anyway is decoded here.
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS | 32)  # zlib or gzip header, detected
    raise httpx.DecodingError(f"unsupported content-encoding {encoding!r}")


class RawResponse:
    """An aiohttp response seen through :class:`UpstreamResponse`, with nothing built that is not read.

    Header names are lower-cased, as httpx gives them.
    """

    __slots__ = ("_closed", "_release", "_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, release: Callable[[], None]) -> None:
        self.status_code = response.status
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.raw_headers}
        self._response = response
        self._release = release
        self._closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        decoder = _decoder(self.headers.get("content-encoding", ""))
        with _mapped():
            # iter_any hands over whatever arrived, so SSE events are not held back.
            async for chunk in self._response.content.iter_any():
                out = decoder.decompress(chunk) if decoder is not None else chunk
                if out:
                    yield out
        if decoder is not None and (rest := decoder.flush()):
            yield rest

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._response.content.at_eof():
                self._response.release()  # back to the pool for reuse
            else:
                self._response.close()  # unread body: the connection cannot be reused
        finally:
            self._release()


class _Stream(httpx.AsyncByteStream):
    """A :class:`RawResponse` body as an httpx stream, for callers that want an ``httpx.Response``."""

    def __init__(self, raw: RawResponse) -> None:
        self._raw = raw

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._raw.aiter_bytes():
            yield chunk

    async def aclose(self) -> None:
        await self._raw.aclose()


class _Slots:
    """A counting limit with a FIFO of waiters; a free slot costs a comparison.

    (asyncio.Semaphore on Python 3.11 builds a generator in ``locked()`` on
    every acquire; this sits on the hot path.) A released slot is handed
    straight to the first waiter, so waiters are served in order.
    """

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, timeout: float | None) -> bool:
        """Take a slot; False when none came free within ``timeout`` seconds."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return self._gave_up(waiter)
        except BaseException:
            self._gave_up(waiter)
            raise
        return True

    def _gave_up(self, waiter: asyncio.Future[None]) -> bool:
        if waiter.done() and not waiter.cancelled():
            self.release()  # handed a slot just as the wait ended: pass it on
        else:
            self._waiters.remove(waiter)
        return False

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one lazily created ``aiohttp.ClientSession``."""

    def __init__(self, max_connections: int, keepalive_expiry: float = 30.0) -> None:
        self._slots = _Slots(max_connections)
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, keepalive_timeout=self._keepalive_expiry,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                # Only the headers httpx built are sent.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = await self.send(request.method, str(request.url), request.headers.multi_items(),
                              await request.aread(), request.extensions.get("timeout", {}))
        return httpx.Response(raw.status_code, headers=list(raw.headers.items()), stream=_Stream(raw),
                              request=request, extensions={"http_version": b"HTTP/1.1"})

    async def send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                   timeout: dict[str, float]) -> RawResponse:
        """The proxy's hot path: no httpx request or response objects to build and take apart again."""
        if not await self._slots.acquire(timeout.get("pool")):
            raise httpx.PoolTimeout("no free connection")
        try:
            with _mapped():
                response = await self._get_session().request(
                    method, url, headers=headers, data=body or None, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout.get("connect"),
                                                  sock_read=timeout.get("read")),
                )
        except BaseException:
            self._slots.release()
            raise
        return RawResponse(response, self._slots.release)

    @property
    def in_flight(self) -> int:
        """Requests holding a connection slot (sent, or handed a slot and about to send)."""
        return self._max_connections - self._slots.free

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
