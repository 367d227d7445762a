"""``nplsim viz`` answers only pages of this machine's own server (issue 14, "security"): a real
server on 127.0.0.1, started and stopped by the test with bounded waits, refuses a foreign Host
header and a websocket upgrade from a foreign origin, and serves its own pages."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from nplsim.viz.server import LocalOnly

START_POLLS = 600  # tries 0.1 s apart to see the server answer (the app imports take seconds)
REQUEST_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
WEBSOCKET_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, host: str, origin: str | None = None, path: str = "/") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        if origin is not None:
            connection.putheader("Origin", origin)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def _upgrade(port: int, origin: str) -> str:
    """The status line of a websocket upgrade to the app's kernel channel."""
    request = (
        f"GET /jupyter/api/kernels/test/channels?session_id=test HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {WEBSOCKET_KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(request.encode())
        return sock.recv(1024).split(b"\r\n", 1)[0].decode()


@pytest.fixture(scope="module")
def server_port():
    """``nplsim viz --port P`` on 127.0.0.1, in its own process group; stopped afterwards."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nplsim", "viz", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(START_POLLS):
            if server.poll() is not None:
                pytest.fail(f"nplsim viz exited with {server.returncode}")
            try:
                if _get(port, f"127.0.0.1:{port}") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("nplsim viz did not answer")
        yield port
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=STOP_TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_its_own_pages_are_served(server_port, name):
    assert _get(server_port, f"{name}:{server_port}") == 200
    own = f"http://{name}:{server_port}"
    assert _get(server_port, f"{name}:{server_port}", origin=own) == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "localhost.evil"]
)
def test_a_foreign_host_header_is_refused(server_port, host):
    # was: any Host header was answered (DNS rebinding)
    assert _get(server_port, host.format(port=server_port)) == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1:{port}"])
def test_a_request_from_a_foreign_page_is_refused(server_port, origin):
    assert _get(server_port, f"127.0.0.1:{server_port}", origin.format(port=server_port)) == 403


def test_a_websocket_from_a_foreign_origin_is_refused_and_its_own_accepted(server_port):
    # was: websocket upgrades from foreign origins were accepted
    assert " 403 " in _upgrade(server_port, "http://evil.example")
    assert " 101 " in _upgrade(server_port, f"http://127.0.0.1:{server_port}")


def test_a_port_in_use_is_one_line(server_port):
    proc = subprocess.run(
        [sys.executable, "-m", "nplsim", "viz", "--port", str(server_port)],
        capture_output=True, text=True, timeout=REQUEST_TIMEOUT_S * 4,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot listen on 127.0.0.1" in proc.stderr


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ([(b"host", b"127.0.0.1:8765")], True),
        ([(b"host", b"localhost:8765"), (b"origin", b"http://localhost:8765")], True),
        ([(b"host", b"[::1]:8765")], True),
        ([], False),
        ([(b"host", b"127.0.0.1:8765"), (b"host", b"evil.example")], False),
        ([(b"host", b"127.0.0.1:8765"), (b"origin", b"http://127.0.0.1:9999")], False),
        ([(b"Host", b"EVIL.example")], False),
    ],
)
def test_which_requests_are_local(headers, allowed):
    assert LocalOnly(None, 8765).allowed(headers) is allowed
