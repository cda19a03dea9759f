"""The report in a real browser: headless Chromium draws every chart, logs no error and
makes no network request.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ended by NUL on file descriptors 3 and 4), so no extra package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import payoff
from payoff.report import write_report
from tests.analysis.test_value import build_value_study

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
# scripts/setup.sh --system installs Debian's chromium; without it these tests fail.
pytestmark = [pytest.mark.slow]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,3000",
    "--remote-debugging-pipe",
)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe."""

    def __init__(self, user_data_dir: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        assert CHROMIUM, "Debian's chromium is missing: run scripts/setup.sh --system"
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"]
        # The browser reads commands on fd 3 and writes replies and events on fd 4.
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "chromium", *cmd],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        os.set_blocking(self._from_browser, False)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            try:
                chunk = os.read(self._from_browser, 1 << 20)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(
        self, method: str, session: str | None = None, timeout: float = 30, **params: Any
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for a while."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.events.append(self._read(deadline))
            except TimeoutError:
                return

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB(A), non-interlaced PNG into rows of raw pixel bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(
            bytes(line) if channels == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3)
        )
        prev = line
    return width, height, rows


def inked(png: bytes) -> float:
    """Return the share of pixels that are not (near) white."""
    width, height, rows = png_pixels(png)
    dark = 0
    for row in rows:
        for k in range(0, len(row), 3):
            if min(row[k], row[k + 1], row[k + 2]) < 235:
                dark += 1
    return dark / (width * height)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


def test_report_renders_in_headless_chromium(study: payoff.Study, tmp_path: Path) -> None:
    report = write_report(study, tmp_path / "report.html")
    html = report.read_text(encoding="utf-8")
    n_figures = len(json.loads(html.split('id="payoff-figures">')[1].split("</script>")[0]))
    browser = DevTools(tmp_path / "profile")
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send("Page.navigate", session, url=report.as_uri())
        state: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = browser.send(
                "Runtime.evaluate",
                session,
                expression="JSON.stringify({r: document.body && document.body.dataset.rendered,"
                " e: document.body && document.body.dataset.errors, t: document.title})",
                returnByValue=True,
            )["result"]
            state = json.loads(state["value"])
            if state.get("e") or state.get("r") == str(n_figures):
                break
            browser.pump(0.2)
        assert not state.get("e"), state
        assert state.get("r") == str(n_figures), state
        assert state["t"].endswith("(ready)")
        browser.pump(0.5)

        # The first screen (the top 900 pixels) answers "more labels?" and says what drives
        # the ROI, on the page as drawn, not only somewhere in the HTML.
        first = json.loads(
            browser.send(
                "Runtime.evaluate",
                session,
                expression="JSON.stringify(Array.from(document.querySelectorAll("
                "'#summary li, #summary .tile')).filter(function(e){"
                "var r=e.getBoundingClientRect(); return r.height>0 && r.top+scrollY<900;})"
                ".map(function(e){return e.innerText;}))",
                returnByValue=True,
            )["result"]["value"]
        )
        seen = " ".join(first)
        assert "More labels? " in seen, first
        assert " of value a prediction" in seen and " predictions = $" in seen, first
        assert "against a TCO of $" in seen, first

        # Each chart's plot area drew something: its screenshot is not blank.
        rects = json.loads(
            browser.send(
                "Runtime.evaluate",
                session,
                expression="JSON.stringify(Array.from(document.querySelectorAll('.chart'))"
                ".map(function(d){var r=d.getBoundingClientRect();"
                "return {id:d.id,x:r.left+scrollX,y:r.top+scrollY,w:r.width,h:r.height,"
                "traces:d.querySelectorAll('.trace, .bars, .point').length};}))",
                returnByValue=True,
            )["result"]["value"]
        )
        assert len(rects) == n_figures
        full = browser.send(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
        )
        (tmp_path / "report.png").write_bytes(base64.b64decode(full["data"]))
        for r in rects:
            assert r["traces"] > 0, r
            shot = browser.send(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": r["x"], "y": r["y"], "width": r["w"], "height": r["h"], "scale": 0.5},
            )
            share = inked(base64.b64decode(shot["data"]))
            assert share > 0.01, (r["id"], share)

        # No console error, no exception, and no request but the file itself.
        errors = [
            e
            for e in browser.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "warning")
            or (
                e.get("method") == "Runtime.consoleAPICalled"
                and (
                    e["params"]["type"] in ("error", "assert", "warning")
                    # plotly.js reports bad figure attributes through console.trace("WARN:")
                    or any(
                        str(a.get("value", "")).startswith(("WARN", "ERROR"))
                        for a in e["params"]["args"]
                    )
                )
            )
        ]
        assert not errors, errors
        urls = [
            e["params"]["request"]["url"]
            for e in browser.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        assert urls, "the navigation itself should be seen"
        outside = [u for u in urls if not u.startswith(("file://", "data:", "about:", "blob:"))]
        assert not outside, outside
    finally:
        browser.close()
