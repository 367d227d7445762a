"""The policy lab in a browser, for the scripts of this folder: a ``nplsim viz`` server on
127.0.0.1 that stops itself, and Debian's Chromium driven by Playwright (never a downloaded one).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip
SERVER_START_S = 90


@contextmanager
def lab_server(url: str | None = None) -> Iterator[str]:
    """The lab's address: ``url`` if given, else a server started here and stopped on exit."""
    if url:
        yield url.rstrip("/") + "/"
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "nplsim.experiments.cli", "viz", "--port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"nplsim viz did not start:\n{log.read().decode()}")
                try:
                    with urllib.request.urlopen(address, timeout=2):
                        break
                except OSError:
                    time.sleep(0.3)
            yield address
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=10)


@contextmanager
def chromium(width: int = 1280, height: int = 800, dark: bool = False, scale: float = 1.0):
    """A new Chromium page of the given size (and colour scheme, and device pixel ratio)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(
                viewport={"width": width, "height": height},
                color_scheme="dark" if dark else "light",
                device_scale_factor=scale,
            )
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def open_lab(page, address: str, query: str = "") -> None:
    """Open the lab and wait until its first run is on screen."""
    page.goto(address + (f"?{query}" if query else ""), timeout=120_000)
    page.wait_for_selector(".nplsim-quarter", timeout=120_000)
    page.wait_for_selector(".nplsim-chart[data-revision]", timeout=120_000)


def quarter(page) -> int:
    """The quarter the lab shows."""
    return int(page.inner_text(".nplsim-quarter").split()[1])
