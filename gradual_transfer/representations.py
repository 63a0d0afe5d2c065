"""What a trained network's layer groups compute on a bounded sample of a task's data: the
features the transferability estimates and the similarity of representations are read from.

**The sample** (:func:`sample_positions`): at most ``screen.sample_size`` examples of a split
(by kind of example), drawn uniformly without replacement with a fixed seed (a param of the
job), the same for every
model that is read on it, so two models' representations are of the same examples. An example
is what the task classifies: an image, a frame (phone recognition: an HMM state), or an
utterance (utterance classification: its frames are all read, and pooled).

**Pooling, as the next group would see it** (:func:`pooled`): a group's output is one vector
per example. A feature map (N, C, H, W) is averaged over its positions (global average pooling,
what a network's own classifier does after its last conv group); a vector stays as it is. For
an utterance, the vectors of its speech frames (those not labelled silence) are averaged, as
the utterance's decision averages their posteriors.

Every group's output comes from one pass over the sample (:func:`group_outputs`), as the
frozen-prefix cache computes it: the features at l_c are the output of group l_c.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a network runs: planning reads the sizes without it
    import torch

    from gradual_transfer.models import GroupedNet

BATCH = 512  # examples per forward pass (frames of utterances: their frames, in batches)


def sample_positions(n: int, size: int, seed: int) -> np.ndarray:
    """`size` of the positions 0..n−1 (all of them when there are fewer), uniformly without
    replacement, in increasing order."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


@dataclass
class Examples:
    """A sample's network inputs and labels: ``labels`` one per example; ``inputs(start, stop)``
    the inputs at those positions (an image or a frame's context window each; gathered on demand,
    so an utterance sample's frames are never all held at once), ``num_inputs`` of them; for
    utterances ``utterance`` gives each input's example and ``speech`` whether it is pooled (not
    silence)."""

    labels: np.ndarray
    num_inputs: int
    inputs: Callable[[int, int], torch.Tensor]
    utterance: np.ndarray | None = None
    speech: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self) -> Iterator[torch.Tensor]:
        for start in range(0, self.num_inputs, BATCH):
            yield self.inputs(start, min(start + BATCH, self.num_inputs))


def image_examples(source, size: int, seed: int) -> Examples:
    """A sample of an image split (:class:`gradual_transfer.data.images.ImageSource`), normalised."""
    import torch

    chosen = sample_positions(len(source), size, seed)

    def inputs(start: int, stop: int) -> torch.Tensor:
        x = torch.from_numpy(source.arrays.images[chosen[start:stop]]).permute(0, 3, 1, 2).float()
        return (x - source.mean) / source.std

    return Examples(np.asarray(source.arrays.labels[chosen], dtype=np.int64), len(chosen), inputs)


def _windows(source, frames: np.ndarray, first: np.ndarray, last: np.ndarray) -> torch.Tensor:
    import torch

    windows = source.features.windows(frames, first, last, source.context)
    return torch.from_numpy((windows - source.mean) * source.scale).unsqueeze(1)


def frame_examples(source, size: int, seed: int) -> Examples:
    """A sample of the frames of a speech split (:class:`gradual_transfer.tasks.speech.FrameSource`),
    each with its context window, labelled with its frame target."""
    chosen = sample_positions(len(source), size, seed)
    index = source.index
    frames, first, last = index.frames[chosen], index.first[chosen], index.last[chosen]
    return Examples(source.features.frame_targets(frames).astype(np.int64), len(chosen),
                    lambda start, stop: _windows(source, frames[start:stop], first[start:stop], last[start:stop]))


def utterance_examples(source, silence: int, size: int, seed: int) -> Examples:
    """A sample of the utterances of a speech split: every frame of each, and the utterance's
    class (the most frequent non-silence frame label, as the SER decision scores it); utterances
    silent throughout are left out."""
    rows = np.sort(source.rows[sample_positions(len(source.rows), size, seed)])
    index = source.features.frame_index(rows)
    targets = source.features.frame_targets(index.frames).astype(np.int64)
    position = np.searchsorted(rows, index.rows)
    speech = targets != silence
    counts = np.bincount(position[speech], minlength=len(rows))
    keep = counts > 0
    labels = [int(np.bincount(targets[(position == u) & speech]).argmax()) for u in np.flatnonzero(keep)]
    kept = keep[position]
    frames, first, last = index.frames[kept], index.first[kept], index.last[kept]
    return Examples(np.asarray(labels, dtype=np.int64), int(kept.sum()),
                    lambda start, stop: _windows(source, frames[start:stop], first[start:stop], last[start:stop]),
                    (np.cumsum(keep) - 1)[position][kept], speech[kept])


def pooled(output: torch.Tensor) -> torch.Tensor:
    """One vector per input: a feature map averaged over its positions, a vector as it is."""
    return output.mean(dim=(2, 3)) if output.dim() == 4 else output.flatten(1)


def _per_example(values: np.ndarray, examples: Examples) -> np.ndarray:
    """Rows per input → rows per example: an utterance's speech frames averaged."""
    if examples.utterance is None:
        return values
    from scipy.sparse import csr_matrix

    chosen = examples.speech
    utterance = examples.utterance[chosen]
    # a sparse (utterances × frames) sum: np.add.at took 2 s per pass on a demo fold
    summing = csr_matrix((np.ones(len(utterance)), (utterance, np.arange(len(utterance)))),
                         shape=(len(examples), len(utterance)))
    return (summing @ values[chosen]) / np.bincount(utterance, minlength=len(examples))[:, None]


def group_outputs(model: GroupedNet, examples: Examples, device: torch.device | str = "cpu",
                  probabilities: bool = False) -> list[np.ndarray]:
    """The pooled output of every layer group (the i-th: group i + 1, l_c = i + 1) on the sample,
    in one pass, in float64 (examples × features); with `probabilities`, one more entry from the
    same pass: the network's softmax over its own classes (an utterance: the mean over its speech
    frames), for LEEP. Feature maps are channels-last, as training lays them out (×2.3 for the
    demo's convolutions on a CPU)."""
    import torch

    model = model.to(device, memory_format=torch.channels_last).eval()
    outputs: list[list[np.ndarray]] = [[] for _ in range(model.num_groups + probabilities)]
    with torch.no_grad():
        for x in examples.batches():
            h = x.to(device)
            if h.dim() == 4:
                h = h.contiguous(memory_format=torch.channels_last)
            for g, group in enumerate(model.body):
                h = group(h)
                outputs[g].append(pooled(h).double().cpu().numpy())
            if probabilities:
                outputs[-1].append(torch.softmax(model.head(h).double(), dim=1).cpu().numpy())
    return [_per_example(np.concatenate(chunks), examples) for chunks in outputs]
