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
