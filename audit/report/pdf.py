"""`audit run --pdf`: report.pdf printed from report.html by headless Chromium.

Driven over the DevTools protocol, not `chromium --print-to-pdf`: the command
line prints at the load event, before plotly has drawn every chart, and at the
window's width, so charts drawn for a wide window are cut off on the page.
Here the page is loaded, plotly's drawing awaited, every chart resized to the
printable width and at most 3/5 of a page high (`window.auditPrintLayout()` of
the report's own script, audit/templates/audit_report/report.js, which a
browser's print also calls), then `Page.printToPDF` prints with the report's
print stylesheet (A4, `@page` in report.css).

Chromium loads nothing from the network: report.html is self-contained, and
every http(s) or websocket request is failed by the Fetch domain before it
leaves. It runs with a private temporary profile, dies with this process
(lifetime.die_with_parent) and is killed when the print is done, fails or times out.
Failures are `OutputError`s of one line: the run then lands nothing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from audit.errors import OutputError, first_line
from audit.report.lifetime import die_with_parent

PDF_FILE = "report.pdf"
# Debian's package is `chromium`; other systems name the binary after their own package.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "headless Chromium is needed for --pdf: install it (Debian/Ubuntu: apt-get install chromium)"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
         "--disable-extensions", "--disable-quic", "--mute-audio", "--hide-scrollbars", "--remote-debugging-port=0",
         "--window-size=1280,1000")
TIMEOUT = 180.0  # seconds for the whole print: start, load, plotly, printToPDF


def browser() -> str:
    """The Chromium binary: $AUDIT_CHROMIUM, else the first of BROWSERS on the PATH; OutputError if none."""
    named = os.environ.get("AUDIT_CHROMIUM")
    found = shutil.which(named) if named else next(filter(None, map(shutil.which, BROWSERS)), None)
    if not found:
        raise OutputError(f"{PDF_FILE}: {INSTALL_HINT}")
    return found


class DevTools:
    """One headless Chromium page over the DevTools protocol (websocket-client), with a private profile."""

    def __init__(self, binary: str, profile: Path, deadline: float):
        import websocket

        self.deadline = deadline
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=die_with_parent())
        self.ws = None
        self._id = 0
        self.events: list[dict] = []
        try:
            port_file = profile / "DevToolsActivePort"
            while not (port_file.exists() and port_file.read_text().strip()):
                if self.proc.poll() is not None:
                    raise OutputError(f"{PDF_FILE}: Chromium exited at start (status {self.proc.returncode})")
                self._check_time("start")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self._left()) as resp:
                page = next(t for t in json.load(resp) if t.get("type") == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self._left(),
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise

    def _left(self) -> float:
        return max(0.5, self.deadline - time.monotonic())

    def _check_time(self, step: str) -> None:
        if time.monotonic() > self.deadline:
            raise OutputError(f"{PDF_FILE}: Chromium timed out ({step})")

    def _receive(self) -> dict:
        self._check_time("waiting for Chromium")
        self.ws.settimeout(self._left())
        msg = json.loads(self.ws.recv())
        if msg.get("method") == "Fetch.requestPaused":  # a request off the machine: refused, never sent
            self.call("Fetch.failRequest", requestId=msg["params"]["requestId"], errorReason="BlockedByClient")
        return msg

    def call(self, method: str, **params) -> dict:
        self._id += 1
        mine = self._id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = self._receive()
            if msg.get("id") == mine:
                if "error" in msg:
                    raise OutputError(f"{PDF_FILE}: Chromium {method}: {msg['error'].get('message', msg['error'])}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, event: str) -> dict:
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == event:
                    return self.events.pop(i)
            msg = self._receive()
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str):
        got = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in got:
            details = got["exceptionDetails"]
            why = details.get("exception", {}).get("description") or details.get("text", "script error")
            raise OutputError(f"{PDF_FILE}: {first_line(why)}")
        return got["result"].get("value")

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001 - closing a socket Chromium may already have closed
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def print_pdf(report: Path, out: Path | None = None, timeout: float = TIMEOUT) -> Path:
    """Print `report` (report.html) to `out` (default: report.pdf beside it); written whole or not at all."""
    report = Path(report).resolve()
    out = Path(out) if out else report.with_name(PDF_FILE)
    binary = browser()
    deadline = time.monotonic() + timeout
    profile = Path(tempfile.mkdtemp(prefix="audit-chromium-"))
    chrome = None
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        chrome = DevTools(binary, profile, deadline)
        chrome.call("Fetch.enable", patterns=[{"urlPattern": "http*"}, {"urlPattern": "ws*"}])
        chrome.call("Page.enable")
        chrome.call("Page.navigate", url=report.as_uri())
        chrome.wait_for("Page.loadEventFired")
        if not chrome.evaluate("typeof window.auditPrintLayout === 'function'"):
            raise OutputError(f"{PDF_FILE}: {report.name} has no print layout (not rendered by audit run)")
        chrome.evaluate("window.auditPrintLayout()")
        printed = chrome.call("Page.printToPDF", printBackground=True, preferCSSPageSize=True,
                              displayHeaderFooter=False, generateDocumentOutline=True)
        tmp.write_bytes(base64.b64decode(printed["data"]))
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"{PDF_FILE}: {exc.strerror or first_line(exc)}") from None
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a websocket or protocol failure: one line, nothing lands
        raise OutputError(f"{PDF_FILE}: Chromium failed: {type(exc).__name__}: {first_line(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)
        if chrome is not None:
            chrome.close()
        shutil.rmtree(profile, ignore_errors=True)
    return out
