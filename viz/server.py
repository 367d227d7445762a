"""The server of ``nplsim viz``: the policy lab (a Solara app) on 127.0.0.1, for local pages only.

``--host`` binds another address (``nplsim viz`` warns in one line that other machines can then
reach the lab); the server then also answers requests addressed to that address by name.

A server bound to 127.0.0.1 is still within reach of any web page the user visits: a page can
make the browser send it requests under a name that resolves to 127.0.0.1 (DNS rebinding, which
shows as a foreign ``Host``) or open a websocket to it (which carries the page's ``Origin``).
:class:`LocalOnly` wraps the Solara app and refuses, with 403 and before Solara sees it, any
request or websocket whose ``Host`` is not this server's loopback address and port, or whose
``Origin``, if any, is not this server's own. Nothing leaves the machine: the front end comes
from the solara-assets package, and Solara's usage telemetry is switched off.

Run as ``python -m nplsim.viz.server --port PORT`` (``nplsim viz`` does so).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

APP = "nplsim.viz.app:page"
HOST = "127.0.0.1"
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")  # how a browser on this machine names it
EXIT_USAGE = 2

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LocalOnly:
    """ASGI middleware: pass on only requests and websockets addressed to this server by a local
    name (``Host``) and, where a browser says which page sent them (``Origin``), from its own."""

    def __init__(self, app: ASGIApp, port: int, host: str = HOST):
        self.app = app
        own = [*LOCAL_NAMES, f"[{host}]" if ":" in host else host]  # and the address bound to
        names = [f"{name}:{port}" for name in own]
        if port == 80:  # the default port may be left out of Host and Origin
            names += own
        self.hosts = frozenset(names)
        self.origins = frozenset(f"http://{name}" for name in names)

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the Host (exactly one) and the Origin (none, or one) are local."""
        hosts = [v.decode("latin-1").lower() for k, v in headers if k.lower() == b"host"]
        origins = [v.decode("latin-1").lower() for k, v in headers if k.lower() == b"origin"]
        if len(hosts) != 1 or hosts[0] not in self.hosts:
            return False
        return not origins or (len(origins) == 1 and origins[0] in self.origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # closing before accepting answers the upgrade with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b"nplsim viz answers only pages of this machine's own server\n"
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _listen(port: int, host: str = HOST) -> socket.socket:
    """A socket listening on ``host``:``port``, or one line and exit status 2."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(f"nplsim: error: --port: {port}: cannot listen on {host}:{port}: "
              f"{exc.strerror or exc}", file=sys.stderr)  # fmt: skip
        raise SystemExit(EXIT_USAGE) from None
    sock.set_inheritable(True)
    return sock


def serve(port: int, host: str = HOST) -> None:
    """Serve the policy lab on ``host``:``port`` (127.0.0.1 unless told) until stopped."""
    sock = _listen(port, host)
    os.environ["SOLARA_APP"] = APP
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    os.environ["SOLARA_MODE"] = "production"
    os.environ["SERVER_NAME"], os.environ["SERVER_PORT"] = host, str(port)
    import uvicorn
    from solara.server.starlette import app

    # Solara advises https for cross-site (iframe) cookies; a local lab keeps the stricter
    # samesite=lax cookie it falls back to, so the advice is noise here.
    warnings.filterwarnings("ignore", "Cookies with samesite=none", UserWarning)

    config = uvicorn.Config(LocalOnly(app, port, host), log_level="warning", lifespan="on")
    shown = f"[{host}]" if ":" in host else host
    print(f"nplsim viz: the policy lab is at http://{shown}:{port}/", file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    """``python -m nplsim.viz.server --port PORT [--host ADDRESS]``."""
    parser = argparse.ArgumentParser(prog="nplsim viz", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default=HOST)
    args = parser.parse_args(argv)
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
