"""Port checks: fail early with a sentence instead of a service dying on bind."""

from __future__ import annotations

import socket
import threading
import time

from devstack.errors import StackError

_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A port nobody listens on right now (for test sessions that must not clash), and never
    one this process was given before: the kernel may offer a just-released port again, and two
    services of one stack given the same port had one answer for both (seen in the e2e stack)."""
    with _handing_out:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free(port: int, what: str, variable: str) -> None:
    if is_listening(port):
        raise StackError(
            f"Port {port} is already taken by another process, so {what} cannot start there. "
            f"Stop that process (`ss -ltnp 'sport = :{port}'` names it) or set {variable}."
        )


def wait_listening(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port):
            return True
        time.sleep(0.2)
    return False
