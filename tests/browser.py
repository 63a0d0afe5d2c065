"""A real headless browser for the tests that read the report as a reviewer would: Chromium's
rendered DOM after its scripts ran. Tests skip, with the reason, where no Chromium is installed
(CI installs it: .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


def rendered_dom(url: str, timeout: int = 120) -> str:
    """The DOM of ``url`` after its scripts ran, offline: no network, no first-run or sync calls,
    a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
