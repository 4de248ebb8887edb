"""Binding the port (before any model loads, so a taken port is one clear line at once) and running uvicorn."""
from __future__ import annotations

import errno
import ipaddress
import socket

from gancli.errors import GancliError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str]:
    """Host headers the app answers. On loopback only loopback names, so a web page elsewhere cannot reach the
    server through a DNS name pointed at 127.0.0.1 (DNS rebinding); bound elsewhere, any name."""
    return list(dict.fromkeys([*LOOPBACK_HOSTS, host])) if is_loopback(host) else ["*"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    if not 0 <= port <= 65535:
        raise GancliError(f"--port must lie in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise GancliError(f"--host {host}: cannot resolve it ({exc.strerror}); give an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise GancliError(f"port {port} on {host} is already in use; choose another --port (or stop what "
                              f"holds it)") from None
        if exc.errno == errno.EACCES:
            raise GancliError(f"port {port} needs privileges on this machine; choose a --port above 1023") from None
        raise GancliError(f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(app, sock: socket.socket) -> None:
    """Serve until Ctrl-C (uvicorn's own signal handling stops it cleanly)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
