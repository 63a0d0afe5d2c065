"""A real headless browser for the tests that read the report as a reviewer would: Chromium's
rendered DOM after its scripts ran (:func:`rendered_dom`), and a page driven click by click
(:class:`Browser`, the DevTools protocol over a pipe: no network port, no package beyond the
standard library). Tests skip, with the reason, where no Chromium is installed (CI installs it:
.ci/run)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

# Offline and quiet: no network, no first-run or sync calls, a fresh profile.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--mute-audio"]


def rendered_dom(url: str, timeout: int = 120) -> str:
    """The DOM of ``url`` after its scripts ran."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Browser:
    """One page of a headless Chromium, driven through the DevTools protocol on file
    descriptors 3 and 4 (``--remote-debugging-pipe``): open a URL at a window size, run
    JavaScript in the page or in one of its frames (a frame's own document, as its scripts left
    it; the report shows each table in an iframe of a ``data:`` URL, which the page's own
    scripts may not read), wait for a condition. Use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 900, timeout: float = 60):
        self.width, self.height, self.timeout = width, height, timeout

    def __enter__(self) -> "Browser":
        self._profile = tempfile.TemporaryDirectory()
        to_chrome, self._commands = os.pipe()
        self._replies, from_chrome = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, to_chrome, 3), (os.POSIX_SPAWN_DUP2, from_chrome, 4),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        self._pid = os.posix_spawn(CHROMIUM, [CHROMIUM, *_FLAGS, "--remote-debugging-pipe",
                                              f"--user-data-dir={self._profile.name}",
                                              f"--window-size={self.width},{self.height}", "about:blank"],
                                   os.environ, file_actions=actions)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next_id = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        for fd in (self._commands, self._replies):
            os.close(fd)
        try:
            os.waitpid(self._pid, 0)
        finally:
            self._profile.cleanup()

    def call(self, method: str, session: bool = False, **params) -> dict:
        """Send one command (to the page's session, or to the browser) and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            # an event (the page loaded, a frame attached, ...): nothing waits for it by name

    def _read(self, deadline: float, method: str) -> dict:
        """The next message, waiting until `deadline` at most (a hung browser fails the test)."""
        while b"\0" not in self._buffer:
            if not select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"{method}: no reply in {self.timeout} s")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise ConnectionError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self.wait("document.readyState === 'complete'")

    def evaluate(self, expression: str, frame: str | None = None):
        """The value of a JavaScript expression in the page, or in the document of the frame
        whose id is `frame` (:meth:`frames`); promises are awaited."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if frame is not None:
            params["contextId"] = self.call("Page.createIsolatedWorld", session=True, frameId=frame,
                                            worldName="test")["executionContextId"]
        result = self.call("Runtime.evaluate", session=True, **params)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, path) -> None:
        """The window as a PNG (to look at what a failing test saw)."""
        import base64

        Path(path).write_bytes(base64.b64decode(self.call("Page.captureScreenshot", session=True)["data"]))

    def frames(self) -> list[dict]:
        """Every child frame of the page: {"id", "url"}."""
        def walk(tree):
            for child in tree.get("childFrames", []):
                yield {"id": child["frame"]["id"], "url": child["frame"]["url"]}
                yield from walk(child)
        return list(walk(self.call("Page.getFrameTree", session=True)["frameTree"]))

    def wait(self, expression: str, frame: str | None = None, timeout: float | None = None):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression, frame)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout or self.timeout} s: {expression}")
            time.sleep(0.1)


def _click(browser: Browser, selector: str, text: str) -> None:
    """Click the element matching `selector` whose text is `text`, as a reader would."""
    clicked = browser.evaluate(f"""(() => {{
        const found = Array.from(document.querySelectorAll({json.dumps(selector)}))
            .find(element => element.textContent.trim() === {json.dumps(text)});
        if (found) found.click();
        return Boolean(found);
    }})()""")
    assert clicked, f"nothing to click: {selector} {text!r}"


# What a table page shows, read inside its frame: every header (name, tooltip, whether it is a
# key or identifier column, whether it is shown, frozen at the left, and where in the frame's
# viewport) and the rows.
_TABLE_SEEN = """(() => {
  const table = document.getElementById("table");
  const headers = Array.from(table.tHead.rows[0].cells).map(th => {
    const box = th.getBoundingClientRect();
    return {name: th.textContent.replace(/[▲▼ ]+$/, ""), description: th.title, key: "key" in th.dataset,
            identifier: "identifier" in th.dataset, shown: getComputedStyle(th).display !== "none",
            frozen: getComputedStyle(th).position === "sticky" && getComputedStyle(th).left !== "auto",
            left: box.left, right: box.right};
  });
  return {viewport: document.documentElement.clientWidth, scrolled: window.scrollX, headers,
          rows: table.tBodies[0].rows.length, title: document.querySelector("h1").textContent};
})()"""


def report_items(report, width: int = 1400, height: int = 900, screenshots=None) -> dict[str, dict]:
    """Every item of a Snakemake report opened inside the report, in a window `width` × `height`,
    as a reader opens it: from the landing page, its category in the navigation, its row there
    (by its labels), the eye button, then the (i) button for its caption. Per item (by its path
    in the report): ``navigation`` (the navigation's header and the item's row), and what was
    shown: a table page (``table``: :data:`_TABLE_SEEN`, before and after showing every column
    and scrolling to the far right), an image (``image``: its decoded size), or a download
    (``download``: the file name and the ``data:`` URL); ``caption`` (the text the (i) button
    shows). With `screenshots` (a folder), each item's view is saved there as a PNG."""
    seen = {}
    with Browser(width, height) as browser:
        browser.open(report.as_uri())
        categories = browser.wait("typeof categories !== 'undefined' && categories")
        labels = browser.evaluate("Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.labels]))")
        for category, subcategories in categories.items():
            for subcategory, paths in subcategories.items():
                for path in paths:
                    browser.open(report.as_uri())
                    browser.wait("document.querySelectorAll('nav a').length > 3")
                    _click(browser, "nav a", category)
                    if len(subcategories) > 1:
                        _click(browser, "nav a", subcategory)
                    row_text = next(iter(labels[path].values())) if labels[path] else path
                    item = {"navigation": browser.wait(f"""(() => {{
                        const row = Array.from(document.querySelectorAll("nav tbody tr"))
                            .find(tr => tr.cells[0].textContent.trim() === {json.dumps(row_text)});
                        return row && {{header: Array.from(document.querySelectorAll("nav thead th"),
                                                         th => th.textContent.trim()).filter(Boolean),
                                        row: Array.from(row.cells, td => td.textContent.trim()).filter(Boolean)}};
                    }})()""")}
                    # the row's buttons: the eye (view, or download), then the (i) (caption)
                    find_row = f"""Array.from(document.querySelectorAll("nav tbody tr"))
                        .find(tr => tr.cells[0].textContent.trim() === {json.dumps(row_text)})"""
                    view = browser.evaluate(f"""(() => {{
                        const eye = {find_row}.querySelectorAll("a[type=button]")[0];
                        if (eye.hasAttribute("download")) return {{download: eye.download, href: eye.href}};
                        eye.click();
                        return {{}};
                    }})()""")
                    if view:
                        item["download"] = view
                    elif browser.wait("Boolean(document.querySelector('iframe') || "
                                      "Array.from(document.images).some(i => i.src.startsWith('data:image/png')))"):
                        if browser.evaluate("Boolean(document.querySelector('iframe'))"):
                            [frame] = [f["id"] for f in browser.frames() if f["url"].startswith("data:text/html")]
                            browser.wait("document.readyState === 'complete' && Boolean(document.getElementById('table'))",
                                         frame)
                            before = browser.evaluate(_TABLE_SEEN, frame)
                            if screenshots is not None:
                                browser.screenshot(Path(screenshots) / f"{Path(path).name}.first.png")
                            browser.evaluate("document.getElementById('all-columns').click(); "
                                             "window.scrollTo(document.documentElement.scrollWidth, 0)", frame)
                            item["table"] = {"first": before, "all_scrolled": browser.evaluate(_TABLE_SEEN, frame)}
                        else:
                            item["image"] = browser.wait("""(() => {
                                const shown = Array.from(document.images).find(i => i.src.startsWith("data:image/png"));
                                return shown.complete && shown.naturalWidth > 0 &&
                                    {width: shown.naturalWidth, height: shown.naturalHeight};
                            })()""")
                    if screenshots is not None:
                        browser.screenshot(Path(screenshots) / f"{Path(path).name}.png")
                    browser.evaluate(f"{find_row}.querySelectorAll('a[type=button]')[1].click()")
                    item["caption"] = browser.wait("document.querySelector('nav').innerText.length > 200 && "
                                                   "document.querySelector('nav').innerText")
                    seen[path] = item
    return seen


if __name__ == "__main__":  # python tests/browser.py results/demo/report.html [screenshot folder]
    import sys

    found = report_items(Path(sys.argv[1]).resolve(), screenshots=sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(found, indent=1, default=str)[:20000])
