"""Training curves: history.csv from a history, TensorBoard events, and on the tiny run every
job's curves and the figure."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from gradual_transfer.curves import EpochLog, history_csv

HISTORY = [
    {"epoch": 0, "phase": "head warm-up", "train_loss": 2.5, "seconds": 1.0},
    {"epoch": 1, "lr": 0.1, "train_loss": 1.5, "seconds": 2.0, "examples_per_s": 50.0, "score": 60.0, "accuracy": 60.0},
    {"epoch": 2, "lr": 0.01, "train_loss": 1.0, "seconds": 2.0, "examples_per_s": 55.0, "score": 70.0, "accuracy": 70.0},
]


def test_history_csv_has_one_row_per_epoch_and_the_metrics_after_the_fixed_columns():
    rows = list(csv.DictReader(io.StringIO(history_csv(HISTORY))))
    assert list(rows[0]) == ["epoch", "phase", "train_loss", "lr", "seconds", "examples_per_s", "score", "accuracy"]
    assert [r["phase"] for r in rows] == ["head warm-up", "train", "train"]
    assert rows[0]["lr"] == "" and rows[2]["score"] == "70.0" and rows[1]["lr"] == "0.1"


def test_epoch_log_rewrites_the_csv_and_writes_tensorboard_events(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = EpochLog(tmp_path / "history.csv", tmp_path / "runs" / "job")
    for n in range(1, len(HISTORY) + 1):  # as fit calls it: the whole history after each epoch
        log(HISTORY[:n])
    log.close()
    assert (tmp_path / "history.csv").read_text() == history_csv(HISTORY)
    events = EventAccumulator(str(tmp_path / "runs" / "job"))
    events.Reload()
    assert [e.value for e in events.Scalars("validation/score")] == [60.0, 70.0]
    assert [e.step for e in events.Scalars("train/train_loss")] == [0, 1, 2]


# --- end to end (the tiny run shared with the workflow tests) --------------------------------

def test_every_training_job_has_its_curves_and_the_figure_exists(tiny_results):
    out, _, _ = tiny_results
    metrics_files = [p for p in (out / "models").rglob("metrics.json") if p.parent.name != "decode"]
    assert len(metrics_files) > 50
    for path in metrics_files:
        history = json.loads(path.read_text())["history"]
        table = pd.read_csv(path.parent / "history.csv")
        assert list(table["epoch"]) == [entry["epoch"] for entry in history], path
        assert table["train_loss"].tolist() == pytest.approx([entry["train_loss"] for entry in history])
        folder = path.parent.relative_to(out / "models")
        assert list((out / "runs" / folder).glob("events.out.tfevents.*")), folder
    figure = out / "figures" / "training_curves.png"
    assert figure.stat().st_size > 20_000 and (out / "figures" / "training_curves.pdf").is_file()
