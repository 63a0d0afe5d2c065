"""Training curves as PyTorch users read them: ``history.csv`` per job, and TensorBoard event
files when ``tensorboard`` is installed.

Both are written as training goes (after the head warm-up and after every epoch), so a running
grid can be watched with ``tensorboard --logdir results/runs``; ``history.csv`` is rewritten
whole from the run's history each time, so a resumed job's file holds every epoch once.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from gradual_transfer.io import write_text

log = logging.getLogger(__name__)

# history.csv's leading columns; the validation metrics of the task follow (score first).
LEADING = ["epoch", "phase", "train_loss", "lr", "seconds", "examples_per_s"]


def history_csv(history: list[dict]) -> str:
    """The per-epoch history as CSV: epoch, phase (``head warm-up`` or ``train``), training
    loss, learning rate, seconds, examples per second, then every validation metric."""
    metrics = sorted({k for entry in history for k in entry} - set(LEADING), key=lambda k: (k != "score", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, LEADING + metrics, lineterminator="\n", restval="")
    writer.writeheader()
    for entry in history:
        writer.writerow({"phase": "train", **entry})
    return buffer.getvalue()


class EpochLog:
    """Called by :func:`gradual_transfer.train.fit` with the whole history after each epoch."""

    def __init__(self, history_path: str | Path | None = None, tensorboard_dir: str | Path | None = None):
        self.history_path = history_path
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: history.csv has the same numbers
                log.info("tensorboard is not installed: no event files (history.csv has the curves)")
            else:
                self.writer = SummaryWriter(str(tensorboard_dir))

    def __call__(self, history: list[dict]) -> None:
        if self.history_path is not None:
            write_text(self.history_path, history_csv(history))
        if self.writer is not None and history:
            entry = history[-1]
            step = entry["epoch"]
            for key, value in entry.items():
                if key in ("epoch", "phase") or not isinstance(value, (int, float)):
                    continue
                tag = f"train/{key}" if key in LEADING else f"validation/{key}"
                self.writer.add_scalar(tag, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
