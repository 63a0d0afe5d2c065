"""What every job does first: log to its log file and use the threads Snakemake gave it."""

from __future__ import annotations

from pathlib import Path

from gradual_transfer import logs


def start(log_file: str | Path | None, threads: int = 1) -> None:
    import torch

    logs.configure(log_file)
    torch.set_num_threads(max(1, threads))
