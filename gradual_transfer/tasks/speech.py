"""The speech tasks: frame batches from the feature files, SER scoring, ASR posteriors.

- **ASR** (TIMIT): frame classifier over 144 HMM states; model selection by frame accuracy on
  the dev set (decoding every epoch would cost more than the epoch); after training, the
  log-posteriors of dev and test are written as Kaldi ark/scp, and a CPU job decodes them
  (:func:`gradual_transfer.decoding.decode_and_score`), tuning acoustic scale and insertion penalty on dev only.
- **SER** (IEMOCAP, one fold): frame classifier over 4 emotions + silence; an utterance's
  decision is the arg-max of its mean emotion posterior over its non-silence frames; UE =
  100 − UAR on the held-out speaker (test) and on the validation speakers, which also select
  the model. A Kaldi data directory's utterance labels are classified the same way (its
  classes + silence, its own speakers' folds).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.errors import DataError
from gradual_transfer.data.kinds import DatasetKind, is_utterance_classification, reader
from gradual_transfer.data.order import IndexedSource, epoch_order
from gradual_transfer.io import read_json, write_ark_scp
from gradual_transfer.metrics import unweighted_error
from gradual_transfer.models import GroupedNet
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.steps import accuracy, predict

log = logging.getLogger(__name__)


class FrameSource:
    """Frames of some utterances of a feature file, each with its ±context window, normalised
    with the training statistics. Examples are frames; batches are gathered vectorised."""

    def __init__(self, features: SpeechFeatures, rows: list[int] | np.ndarray, stats: dict, context: int) -> None:
        self.features, self.context = features, context
        self.rows = np.asarray(rows, dtype=np.int64)
        self.index = features.frame_index(self.rows)
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.scale = (1.0 / np.asarray(stats["std"], dtype=np.float32)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def input_shape(self) -> list[int]:
        return [1, 2 * self.context + 1, self.features.num_bins]

    def batches(self, batch_size, generator):
        n = len(self)
        order = epoch_order(n, generator).numpy()
        ix = self.index
        for start in range(0, n, batch_size):
            chosen = order[start:start + batch_size]
            frames = ix.frames[chosen]
            windows = self.features.windows(frames, ix.first[chosen], ix.last[chosen], self.context)
            x = torch.from_numpy((windows - self.mean) * self.scale).unsqueeze(1)
            y = torch.from_numpy(self.features.frame_targets(frames).astype(np.int64))
            yield x, y

    def split_by_utterance(self, values: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        """Per-frame values in this source's order → one array per utterance."""
        counts = self.features.num_frames[self.rows]
        return np.split(np.asarray(values), np.cumsum(counts)[:-1])

    def resident_bytes(self) -> int:
        """Device memory :meth:`to_device` takes: features (float32), and per frame its target
        and its utterance's bounds (three int64)."""
        return len(self) * (4 * self.features.num_bins + 3 * 8)

    def labels(self) -> tuple[Path, np.ndarray]:
        """The file the frames come from, and their targets (to check them against the task)."""
        return self.features.path, self.features.frame_targets(self.index.frames)

    def to_device(self, device: torch.device | str) -> "ResidentFrameSource":
        return ResidentFrameSource(self, device)


class ResidentFrameSource(IndexedSource):
    """A :class:`FrameSource` copied to `device` once: the frames of its utterances as one
    block, each frame's utterance bounds within it, the normalisation. Context windows, targets
    and normalisation of a batch are gathered there by index (no host work per step). The same
    examples in the same order as the source and the same float32 values (test_device_paths)."""

    resident = True

    def __init__(self, source: FrameSource, device: torch.device | str) -> None:
        self.device, self.context = torch.device(device), source.context
        self.input_shape = source.input_shape
        self.rows, self.features = source.rows, source.features
        feats = [source.features.feats(r) for r in source.rows]
        targets = [source.features.targets(r) for r in source.rows]
        counts = source.features.num_frames[source.rows]
        # frame i of this source is row i of the block: its utterance spans [first, last)
        starts = np.cumsum(counts) - counts
        self.block = torch.from_numpy(np.concatenate(feats)).to(self.device)
        self.targets = torch.from_numpy(np.concatenate(targets).astype(np.int64)).to(self.device)
        self.first = torch.from_numpy(np.repeat(starts, counts)).to(self.device)
        self.last = torch.from_numpy(np.repeat(starts + counts, counts)).to(self.device)
        self.offsets = torch.arange(-self.context, self.context + 1, device=self.device)
        self.mean = torch.from_numpy(source.mean).to(self.device)
        self.scale = torch.from_numpy(source.scale).to(self.device)

    def gather(self, chosen: torch.Tensor) -> torch.Tensor:
        """The context windows of the chosen frames (clamped to their utterance), normalised."""
        index = torch.clamp(chosen[:, None] + self.offsets[None, :], self.first[chosen, None],
                            self.last[chosen, None] - 1)
        return ((self.block[index] - self.mean) * self.scale).unsqueeze(1)

    split_by_utterance = FrameSource.split_by_utterance


def ser_decisions(source: FrameSource, log_posteriors: torch.Tensor, targets: torch.Tensor,
                  scored: int) -> tuple[np.ndarray, np.ndarray]:
    """(true class, decided class) per utterance: arg-max of the mean posterior of the `scored`
    classes (the task's classes less silence, the last) over its speech frames. An utterance
    labelled silent throughout carries no class to score and is left out."""
    posteriors = log_posteriors[:, :scored].exp().numpy()
    true, decided = [], []
    for post, target in zip(source.split_by_utterance(posteriors), source.split_by_utterance(targets.numpy())):
        speech = target != scored  # silence is the class after the scored ones
        if not speech.any():
            continue
        true.append(int(np.bincount(target[speech], minlength=scored).argmax()))
        decided.append(int(post[speech].mean(axis=0).argmax()))
    return np.array(true), np.array(decided)


def evaluation_batch_size(recipe: Recipe) -> int:
    return max(recipe.batch_size, 1024)


def evaluator(kind: DatasetKind, settings: dict, batch_size: int, device: torch.device,
              options: RuntimeOptions) -> Callable[[GroupedNet, FrameSource], dict]:
    """Frame accuracy for every task; for utterance classification (SER, a Kaldi data
    directory's labels) also the unweighted error of utterance decisions, which selects the
    model (ASR selects by frame accuracy: decoding every epoch costs more)."""
    classify = is_utterance_classification(kind)  # not phone recognition
    scored = settings["classes"] - 1 if classify else None  # the classes less silence (the last)

    def evaluate(model: GroupedNet, source: FrameSource) -> dict:
        log_posteriors, targets = predict(model, source, batch_size, device, options)
        metrics = {"frame_accuracy": 100.0 * accuracy(log_posteriors, targets)}
        if classify:
            true, decided = ser_decisions(source, log_posteriors, targets, scored)
            metrics["ue"] = unweighted_error(true, decided, range(scored))
            metrics["utterances"] = int(len(true))
            metrics["score"] = 100.0 - metrics["ue"]
        else:
            metrics["score"] = metrics["frame_accuracy"]
        return metrics
    return evaluate


def sources(kind: DatasetKind, settings: dict, inputs: Mapping[str, str], fold: int) -> dict[str, FrameSource]:
    """Frame sources of the target task. TIMIT (`inputs`: ``train``, ``dev``, ``test``,
    ``stats``): its official splits, dev as validation. Utterance classification, IEMOCAP or a
    Kaldi data directory (``features``, ``stats`` of the fold): the fold's training, validation
    and test speakers."""
    context = settings["context"]
    stats = read_json(inputs["stats"])
    if not is_utterance_classification(kind):  # phone recognition: TIMIT's official splits
        files = {split: SpeechFeatures(inputs[split]) for split in ("train", "dev", "test")}
        return {"train": FrameSource(files["train"], range(len(files["train"])), stats, context),
                "validation": FrameSource(files["dev"], range(len(files["dev"])), stats, context),
                "test": FrameSource(files["test"], range(len(files["test"])), stats, context)}
    features = SpeechFeatures(inputs["features"])
    layout = reader(kind).fold_layout(features.all_speakers, settings.get("validation_speakers") or [], fold)
    rows = {part: [r for r in range(len(features)) if features.speakers[r] in speakers] for part, speakers in layout.items()}
    empty = [part for part in ("train", "validation", "test") if not rows[part]]
    if empty:  # refused before training, not after it
        counts = {s: int((features.speakers == s).sum()) for part in layout.values() for s in part}
        raise DataError(f"{inputs['features']}: fold {fold} has no utterance of its {' or '.join(empty)} speakers "
                        f"({', '.join(s for part in empty for s in layout[part])}; utterances per speaker: {counts}). "
                        f"Remove fold {fold} from the SER task's folds, or choose other validation speakers.")
    return {split: FrameSource(features, rows[split], stats, context) for split in ("train", "validation", "test")}


def utterance_posteriors(model: GroupedNet, source: FrameSource, batch_size: int, device: torch.device,
                         options: RuntimeOptions) -> list[tuple[str, np.ndarray]]:
    """(utterance id, its frames' log-posteriors as float32) for every utterance of `source`."""
    log_posteriors, _ = predict(model, source, batch_size, device, options)
    utt_ids = [source.features.utt_ids[r] for r in source.rows]
    return [(utt, np.ascontiguousarray(post, dtype=np.float32))
            for utt, post in zip(utt_ids, source.split_by_utterance(log_posteriors.numpy()), strict=True)]


def write_posteriors(model: GroupedNet, source: FrameSource, ark: str | Path, scp: str | Path, batch_size: int,
                     device: torch.device, options: RuntimeOptions) -> None:
    """Frame log-posteriors of every utterance as a Kaldi archive + script file (float32)."""
    write_ark_scp(utterance_posteriors(model, source, batch_size, device, options), ark, scp)


def after_training(model: GroupedNet, sources: dict[str, FrameSource], outputs: Mapping[str, str], batch_size: int,
                   device: torch.device, options: RuntimeOptions) -> None:
    """An ASR-target model writes the log-posteriors of dev and test for the decoder
    (`outputs`: ``dev_ark``, ``dev_scp``, ``test_ark``, ``test_scp``)."""
    for split, source in (("dev", "validation"), ("test", "test")):
        if f"{split}_ark" in outputs:
            write_posteriors(model, sources[source], outputs[f"{split}_ark"], outputs[f"{split}_scp"], batch_size,
                             device, options)
