"""How the service is served: uvicorn with its httptools protocol, and what is checked before.

`uvicorn_options` is the one place the server's options are decided: `chatapp-accounts serve`
and the benchmark's ceiling (bench/ceiling.py) both use it, so they are served alike.
"""

from __future__ import annotations

import socket
from typing import Any


def check_can_listen(host: str, port: int) -> None:
    """Bind every address `host` names on `port`, as the server will, and let go at once: an
    address that cannot be bound or a port in use is an OSError here, said in one line, rather
    than uvicorn's log and exit once serving has begun."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def uvicorn_options(
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    forwarded_allow_ips: str = "127.0.0.1",
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "http": "httptools",
        "server_header": False,
        "access_log": False,  # the app logs one structured line per request itself
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        # The web inbox's event streams never end by themselves: on shutdown they are closed
        # after this many seconds (browsers reconnect to the next server).
        "timeout_graceful_shutdown": 5,
    }
