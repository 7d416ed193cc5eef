"""Headless Chromium driven over the DevTools protocol, for tests of pages Pulih serves.

Debian's ``chromium`` starts with ``--remote-debugging-port=0`` and writes the port it chose to
``DevToolsActivePort`` in its profile; the test talks to it with the ``websockets`` client
(synchronous API). A :class:`Page` collects every console error and uncaught exception, so a
test can assert that the page ran cleanly.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    """Debian's chromium on PATH (or ``PULIH_CHROMIUM``), or None."""
    if os.environ.get("PULIH_CHROMIUM"):
        return os.environ["PULIH_CHROMIUM"]
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class DevTools:
    """One websocket to the browser; commands are sent to it or to an attached page's session."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        """Send a command and wait for its answer (events that arrive meanwhile are kept)."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + 30
        while True:
            reply = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def drain(self) -> None:
        """Take in the events that arrived since the last command."""
        while True:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=0.01)))
            except TimeoutError:
                return


@dataclass
class Page:
    """A tab: navigate, evaluate, wait for a condition, take screenshots, read its console."""

    devtools: DevTools
    session: str
    seen: int = 0
    problems: list[str] = field(default_factory=list)

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.devtools.send(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Poll ``expression`` until it is truthy (its value), or fail saying what the page logged."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expression} not true within {timeout}s; console: {self.console_errors()}"
                )
            time.sleep(0.1)

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the document has loaded."""
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def viewport(self, width: int, height: int, *, mobile: bool = False, scale: float = 1) -> None:
        """Size the page as a laptop window or a phone (``mobile``: touch, meta viewport)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
        )

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (not only the viewport) at ``path``."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Every console error, failed load and uncaught exception of this page so far."""
        self.devtools.drain()
        for event in self.devtools.events[self.seen :]:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.problems.append(
                    f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                self.problems.append(
                    "console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.problems.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        self.seen = len(self.devtools.events)
        return list(self.problems)


@contextmanager
def chromium(profile: Path, timeout: float = 30) -> Iterator[Browser]:
    """A headless Chromium with its own profile in ``profile``, closed afterwards."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    profile.mkdir(parents=True, exist_ok=True)
    port_file = profile / "DevToolsActivePort"
    port_file.unlink(missing_ok=True)  # a previous browser's, naming a port nobody listens on now
    log = (profile.parent / "chromium.log").open("wb")
    process = subprocess.Popen(
        [
            executable,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"chromium did not start: {(profile.parent / 'chromium.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 1024 * 1024) as socket:
            yield Browser(DevTools(socket))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class Browser:
    """The browser behind one DevTools connection."""

    devtools: DevTools

    def new_page(self) -> Page:
        """A new tab with its console, log and page events switched on."""
        target = self.devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.devtools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self.devtools, session)
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        return page

    def close(self) -> None:
        """Ask the browser to quit (the context manager also ends its process)."""
        with suppress(Exception):
            self.devtools.send("Browser.close")
