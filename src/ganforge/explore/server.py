"""The explorer's web server: Starlette routes over a ``Session``, served by uvicorn on a socket bound here.

Starlette and uvicorn are an optional extra (``pip install "ganforge[explore]"``): a small, well-kept ASGI
toolkit and its reference server, which run the model work in a thread pool, stream uploads, and survive
clients that go away. The page's assets ship in the package (``static/``) and load nothing from elsewhere.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .session import MAX_UPLOAD, Busy, Session

log = logging.getLogger("ganforge")

STATIC = Path(__file__).with_name("static")
INSTALL = 'pip install "ganforge[explore]"'
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")  # every address of the machine: reachable under names this server cannot know
# The page loads its own script and style and nothing else; tiles are PNG data URIs and blobs of fetched images.
HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                        b"frame-ancestors 'none'; base-uri 'none'"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """The names a request's Host may carry for a server bound to ``host`` (None: any, for a wildcard bind)."""
    return None if host in WILDCARD else tuple(dict.fromkeys((*LOOPBACK, host.strip("[]"))))


def _hostname(value: str) -> str | None:
    """``127.0.0.1:8000``, ``[::1]:80`` or ``http://localhost:8000`` -> the host name alone (None if malformed)."""
    try:
        return urlsplit(value if "//" in value else "//" + value).hostname
    except ValueError:
        return None


class Guard:
    """An ASGI layer in front of the app. It refuses a request whose Host header is not a name of this server:
    a web page elsewhere that rebinds its own domain to 127.0.0.1 (DNS rebinding) would send its own name. It
    refuses a POST from another origin: any page can send one, without reading the answer. And it adds
    ``HEADERS`` to every answer."""

    def __init__(self, app: Any, hosts: tuple[str, ...] | None) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = _hostname(headers.get("host", ""))
        origin = headers.get("origin")
        if self.hosts is not None and host not in self.hosts:
            return await self._refuse(send, 421, f"Host {headers.get('host', '')!r} is not this server's name")
        if scope["method"] == "POST" and origin is not None and _hostname(origin) != host:
            return await self._refuse(send, 403, f"a POST from {origin[:100]!r}, another site, is refused")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(send: Any, status: int, reason: str) -> None:
        body = reason.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *HEADERS]})
        await send({"type": "http.response.body", "body": body})


def require_server() -> tuple[Any, Any]:
    """Starlette and uvicorn, or the one-line reason they are missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(f"ganforge explore needs the explore extra: {INSTALL}") from None
    return starlette, uvicorn


def make_app(session: Session, hosts: tuple[str, ...] | None = LOOPBACK) -> Any:
    """The ASGI app of ``session``: the page, its assets and the JSON/PNG/GIF API the page calls, behind ``Guard``
    (``hosts``: the names requests may address it by; None: any)."""
    require_server()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def query(request: Request) -> dict[str, str]:
        return {k: v for k, v in request.query_params.items()}

    def download(content: bytes, media: str, name: str, request: Request) -> Response:
        headers = {"Cache-Control": "no-store"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(content, media_type=media, headers=headers)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse(session.info())

    async def grid(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(session.grid, query(request)))

    async def tile(request: Request) -> Response:
        return download(await run_in_threadpool(session.tile_png, query(request)), "image/png", "tile.png", request)

    async def latent(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(session.latent, query(request)))

    async def sweep(request: Request) -> Response:
        return download(await run_in_threadpool(session.sweep_png, query(request)), "image/png", "sweep.png",
                        request)

    async def interpolate(request: Request) -> Response:
        gif = await run_in_threadpool(session.interpolation_gif, query(request), request.query_params.getlist("t"))
        return download(gif, "image/gif", "interpolation.gif", request)

    async def arithmetic(request: Request) -> Response:
        figure, _ = await run_in_threadpool(session.arithmetic, query(request))
        return download(figure, "image/png", "arithmetic.png", request)

    async def arithmetic_npz(request: Request) -> Response:
        _, latents = await run_in_threadpool(session.arithmetic, query(request))
        return download(latents, "application/octet-stream", "arithmetic.latents.npz", request)

    async def latents_npz(request: Request) -> Response:
        data = await run_in_threadpool(session.latents_npz, query(request), request.query_params.getlist("t"))
        return download(data, "application/octet-stream", "latents.npz", request)

    async def directions(request: Request) -> Response:
        found = await run_in_threadpool(session.directions)
        return JSONResponse({"k": len(found.vectors), "variance": found.variance.round(5).tolist()})

    async def project(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD:
            return PlainTextResponse(f"image: {declared} bytes; at most {MAX_UPLOAD} are accepted", 413)
        body = bytearray()
        async for chunk in request.stream():  # never more than MAX_UPLOAD in memory, whatever the header said
            body += chunk
            if len(body) > MAX_UPLOAD:
                return PlainTextResponse(f"image: more than {MAX_UPLOAD} bytes; at most that is accepted", 413)
        job = await run_in_threadpool(session.start_projection, bytes(body))
        return JSONResponse({"job": job})

    async def project_state(request: Request) -> Response:
        return JSONResponse(session.job(request.path_params["job"]))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(str(exc).replace("\n", " "), 400)

    async def busy(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(str(exc), 503, headers={"Retry-After": "5"})

    async def failure(request: Request, exc: Exception) -> Response:
        log.exception("explore: %s %s failed", request.method, request.url.path)
        return PlainTextResponse(f"internal error: {type(exc).__name__}", 500)

    routes = [
        Route("/", index), Route("/api/info", info), Route("/api/grid", grid), Route("/api/tile", tile),
        Route("/api/latent", latent), Route("/api/sweep", sweep), Route("/api/interpolate", interpolate),
        Route("/api/arithmetic", arithmetic), Route("/api/arithmetic.npz", arithmetic_npz),
        Route("/api/latents.npz", latents_npz), Route("/api/directions", directions),
        Route("/api/project", project, methods=["POST"]), Route("/api/project/{job}", project_state),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    app = Starlette(routes=routes, exception_handlers={ConfigError: bad_request, Busy: busy, Exception: failure})
    return Guard(app, hosts)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; a port that is taken is a one-line ConfigError."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a port number (0..65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host: cannot resolve {host!r} ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: {host}:{port} is already in use; pick another --port") from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
    sock.listen(128)
    return sock


def serve(session: Session, host: str = "127.0.0.1", port: int = 8000, ready: Any = None) -> None:
    """Serve ``session`` until Ctrl-C (or SIGTERM). ``ready(url)`` is called once the socket listens (a client
    that connects before uvicorn has started waits in the socket's queue)."""
    _, uvicorn = require_server()
    sock = bind(host, port)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(make_app(session, allowed_hosts(host)), log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=3))
    if ready is not None:
        ready(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["Guard", "allowed_hosts", "bind", "make_app", "require_server", "serve"]
