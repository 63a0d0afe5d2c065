"""Logging set-up for jobs: everything to the job's log file, warnings also to stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def configure(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = []
    stderr = logging.StreamHandler(sys.stderr)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
        stderr.setLevel(logging.WARNING)
    handlers.append(stderr)
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class _LogLines:
    """A file-like target for tqdm that turns each refresh into one log line (no carriage
    returns in log files)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> None:
        text = text.strip("\r\n ")
        if text:
            self.logger.info("%s", text)

    def flush(self) -> None:
        pass


def progress(iterable, desc: str = "", interval: float = 30.0, total: int | None = None):
    """A tqdm progress bar written into the job's log at most every `interval` seconds."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=_LogLines(logging.getLogger("progress")),
                mininterval=interval, maxinterval=max(interval, 1.0) * 2, ascii=True, ncols=100, leave=False)
