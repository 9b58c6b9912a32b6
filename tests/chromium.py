"""Open local HTML pages in headless Chromium through the DevTools protocol (no packages).

Chromium runs with `--remote-debugging-pipe`: commands go to its fd 3 and replies come from
its fd 4, JSON messages separated by NUL bytes. For each page this collects console
errors, uncaught exceptions, failed loads and images that did not decode, and a
full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# The images of the page that did not load or decode, and how many there are.
_IMAGES_SCRIPT = """JSON.stringify({
  broken: Array.from(document.images)
    .filter((image) => !image.complete || image.naturalWidth === 0)
    .map((image) => image.getAttribute("src")),
  count: document.images.length,
})"""


def find_chromium() -> str | None:
    """Debian's `chromium` (or $OMUDA_CHROMIUM, chromium-browser, google-chrome)."""
    configured = os.environ.get("OMUDA_CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@dataclass
class PageCheck:
    """What a page did in the browser."""

    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    broken_images: list[str] = field(default_factory=list)
    image_count: int = 0
    screenshot: bytes = b""  # PNG of the whole page


class _DevTools:
    def __init__(self, command_fd: int, reply_fd: int) -> None:
        self._commands = os.fdopen(command_fd, "wb", buffering=0)
        self._replies = os.fdopen(reply_fd, "rb", buffering=0)
        self._messages: queue.Queue = queue.Queue()
        self._next_id = 0
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        while chunk := self._replies.read(65536):
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for message in messages:
                self._messages.put(json.loads(message))
        self._messages.put(None)  # the browser closed the pipe

    def call(
        self, method: str, session: str | None = None, timeout: float = 60, **params: object
    ) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._commands.write(json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self._next_id, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait(self, wanted: object, timeout: float) -> dict:
        """The first message `wanted(message)` accepts; events on the way are kept."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError("Chromium did not answer in time") from None
            if message is None:
                raise RuntimeError("Chromium closed the DevTools pipe")
            if "method" in message:
                self.events.append(message)
            if wanted(message):
                return message


def _problems(events: list[dict]) -> list[str]:
    found = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            found.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            found.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text', '')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed":
            found.append(f"load failed: {params.get('errorText', '')}")
    return found


def check_pages(
    chromium: str, pages: list[Path], width: int = 1400, timeout: float = 60
) -> list[PageCheck]:
    """Open each page (a local HTML file) in one headless Chromium; see `PageCheck`."""
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()

    def child_pipes() -> None:  # in the child, before exec: the pipes as fds 3 and 4
        os.dup2(command_read, 3)
        os.dup2(reply_write, 4)

    with tempfile.TemporaryDirectory() as profile:
        args = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-dev-shm-usage", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", f"--window-size={width},1000", "about:blank",
        ]  # fmt: skip
        browser = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=child_pipes,  # noqa: PLW1509 (single-threaded at this point)
        )
        os.close(command_read)
        os.close(reply_write)
        tools = _DevTools(command_write, reply_read)
        try:
            return [_check_page(tools, page, width, timeout) for page in pages]
        finally:
            with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                tools.call("Browser.close", timeout=10)
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()


def _check_page(tools: _DevTools, page: Path, width: int, timeout: float) -> PageCheck:
    target = tools.call("Target.createTarget", url="about:blank", timeout=timeout)["targetId"]
    session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        tools.call(f"{domain}.enable", session)
    tools.call("Emulation.setDeviceMetricsOverride", session, width=width, height=1000,
               deviceScaleFactor=1, mobile=False)  # fmt: skip
    first_event = len(tools.events)
    tools.call("Page.navigate", session, url=page.resolve().as_uri())
    tools.wait(
        lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session,
        timeout,
    )
    images = json.loads(tools.call("Runtime.evaluate", session, expression=_IMAGES_SCRIPT)
                        ["result"]["value"])  # fmt: skip
    shot = tools.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                      timeout=timeout)  # fmt: skip
    events = [e for e in tools.events[first_event:] if e.get("sessionId") == session]
    tools.call("Target.closeTarget", targetId=target)
    return PageCheck(
        errors=_problems(events),
        broken_images=images["broken"],
        image_count=images["count"],
        screenshot=base64.b64decode(shot["data"]),
    )
