"""The training step: SGD steps with the epoch's loss kept on the device, optionally replayed as
a CUDA graph, a diverged run stopped with advice, and prediction with the same placement."""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F

from gradual_transfer.batches import BatchSource, memory_format, prefetched, to_device
from gradual_transfer.logs import progress
from gradual_transfer.models import GroupedNet
from gradual_transfer.recipe import Recipe, RuntimeOptions

log = logging.getLogger(__name__)


def autocast(device: torch.device, options: RuntimeOptions):
    if device.type == "cuda" and options.amp_bf16:
        # autocast's cache of bf16 weight copies must be off for a graph capture (the copies
        # would be made once, at capture, and never again)
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not options.cuda_graphs)
    return nullcontext()



def lay_out(model: GroupedNet, device: torch.device, options: RuntimeOptions) -> GroupedNet:
    """`model` on `device`, its convolution weights in the configured layout (either way, explicitly:
    a model trained or loaded in the other layout keeps it otherwise)."""
    return model.to(device, memory_format=memory_format(options))



DIVERGED_LOSS_FACTOR = 1000


class TrainingDiverged(RuntimeError):
    """The loss or a trainable tensor stopped being finite: nothing of the run is kept."""


class CudaGraphs:
    """The CUDA calls of a graphed training step, in one place (tests stand in an eager
    imitation, as CPUs have no graphs)."""

    def new_stream(self) -> torch.cuda.Stream:
        return torch.cuda.Stream()

    def run_on(self, stream: torch.cuda.Stream, work: Callable[[], None]) -> None:
        """`work` on `stream`, ordered after and before the current stream's work."""
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            work()
        torch.cuda.current_stream().wait_stream(stream)

    def capture(self, work: Callable[[], None], stream: torch.cuda.Stream) -> Callable[[], None]:
        """`work` recorded (not run) as a graph on `stream`; returns what replays it. Thread-local:
        a prefetch thread (data that stay on the host) may pin memory meanwhile."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            work()
        return graph.replay


class GraphCaptureFailed(RuntimeError):
    """The training step could not be captured: the job stops and names the setting."""


class StepRunner:
    """SGD steps of one optimizer, with the epoch's summed loss and the first step whose loss was
    not finite kept on the device (checking each step on the host would make it wait for the GPU
    every step).

    With ``cuda_graphs`` on a GPU the whole step of a full batch (forward, loss, backward, the
    optimizer step and this bookkeeping) is captured once as a CUDA graph, after
    :attr:`WARMUP_STEPS` eager steps on the stream the capture then uses (as PyTorch asks:
    autograd, cuDNN's autotuning, the libraries' per-stream handles and the momentum buffers are
    set up then), and replayed for every later full batch: one launch instead of hundreds. A
    batch of another size (an epoch's ragged last batch) runs eagerly through the same
    parameters, gradients and optimizer state: no example is dropped or padded, so a graphed
    epoch trains on exactly the examples of an eager one. The learning rate is a tensor on the
    device (fused SGD, :meth:`Recipe.optimizer`) that :func:`set_learning_rate` changes in
    place, so the schedule needs no re-capture.
    """

    WARMUP_STEPS = 3

    def __init__(self, model: GroupedNet, optimizer: torch.optim.Optimizer, device: torch.device,
                 options: RuntimeOptions, batch_size: int, start_group: int = 0,
                 graphs: CudaGraphs | None = None) -> None:
        self.model, self.optimizer, self.device, self.options = model, optimizer, device, options
        self.batch_size, self.start_group = batch_size, start_group
        if graphs is None and options.cuda_graphs and device.type == "cuda":
            graphs = CudaGraphs()
        self.graphs = graphs
        self.replay: Callable[[], None] | None = None
        self.capture_stream = None
        self.eager_full_steps = 0
        self.steps = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.total_loss = torch.zeros((), device=device)
        self.count = 0

    def start_epoch(self) -> None:
        self.steps.zero_()
        self.first_bad.fill_(-1)
        self.total_loss.zero_()
        self.count = 0

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(self.device, self.options):
            loss = F.cross_entropy(self.model(x, self.start_group), y)
        loss.backward()
        self.optimizer.step()
        loss = loss.detach().float()
        self.steps += 1
        self.first_bad.copy_(torch.where((self.first_bad < 0) & ~torch.isfinite(loss), self.steps, self.first_bad))
        self.total_loss += loss * len(y)

    def _fresh_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._step(x, y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.count += len(y)
        if self.graphs is None or len(y) != self.batch_size:
            # after capture the gradients live in the graph's memory: zero them there, in place
            self.optimizer.zero_grad(set_to_none=self.replay is None)
            self._step(x, y)
        elif self.replay is not None:
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.replay()
        elif self.eager_full_steps < self.WARMUP_STEPS:
            self.capture_stream = self.capture_stream or self.graphs.new_stream()
            self.graphs.run_on(self.capture_stream, lambda: self._fresh_step(x, y))
            self.eager_full_steps += 1
        else:
            self.static_x, self.static_y = torch.empty_like(x), torch.empty_like(y)
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.optimizer.zero_grad(set_to_none=True)  # backward allocates them in the graph's pool
            try:
                self.replay = self.graphs.capture(lambda: self._step(self.static_x, self.static_y),
                                                  self.capture_stream)
            except RuntimeError as error:
                raise GraphCaptureFailed(
                    f"capturing the training step as a CUDA graph failed ({error}). Set cuda_graphs: false for "
                    f"this architecture under runtime.cuda_by_architecture and run again.") from error
            log.info("training step captured as a CUDA graph (batch %d); ragged batches run eagerly", len(y))
            self.replay()  # capturing records the step; this runs it

    def finish(self, desc: str) -> float:
        """The epoch's mean training loss. Raises :class:`TrainingDiverged` (naming `desc` and the
        first bad step) when a loss was not finite or a trainable tensor is not finite now."""
        bad_step = int(self.first_bad.item())
        if bad_step >= 0:
            raise TrainingDiverged(f"{desc}: the training loss became NaN or infinite at step {bad_step}")
        bad = [name for name, p in self.model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
        if bad:
            raise TrainingDiverged(f"{desc}: trainable parameters are not finite ({', '.join(bad[:3])})")
        mean_loss = self.total_loss.item() / max(self.count, 1)
        # cross-entropy starts near chance, log(classes); 1000 times that is no training at all
        chance = math.log(max(self.model.head.out_features, 2))
        if mean_loss > DIVERGED_LOSS_FACTOR * chance:
            raise TrainingDiverged(f"{desc}: the mean training loss {mean_loss:.3g} is over {DIVERGED_LOSS_FACTOR} "
                                   f"times chance level ({chance:.2f})")
        return mean_loss



def train_steps(runner: StepRunner, batches, desc: str = "", total: int | None = None) -> float:
    """One SGD step per batch; returns the mean training loss. With ``runner.start_group`` = k
    the batches hold the (cached) output of group k, not model inputs."""
    runner.model.train()
    runner.start_epoch()
    device, options = runner.device, runner.options
    if options.prefetch and device.type == "cuda":
        batches = prefetched(batches)
    for x, y in progress(batches, desc=desc, interval=options.progress_interval_s, total=total):
        runner(to_device(x, device, options), to_device(y, device, options))
    return runner.finish(desc)



def diverged(error: TrainingDiverged, recipe: "Recipe") -> TrainingDiverged:
    return TrainingDiverged(
        f"training diverged in {error}. No model is written. Lower the learning rate of this recipe "
        f"(optimizer.lr is {recipe.lr:g}; try {recipe.lr / 10:g}) and run again."
    )



@torch.no_grad()
def predict(model: GroupedNet, source: BatchSource, batch_size: int, device: torch.device,
            options: RuntimeOptions = RuntimeOptions()) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-posteriors (float32, CPU) and targets of every example of `source`, in order."""
    # the weights keep their layout: fit set it, and re-laying them here would leave a fused
    # optimizer's momentum buffers in the other layout (they must match their parameters)
    model.to(device).eval()
    outputs, targets = [], []
    for x, y in source.batches(batch_size, None):
        with autocast(device, options):
            logits = model(to_device(x, device, options))
        outputs.append(F.log_softmax(logits.float(), dim=1))  # kept on the device: one copy back at the end
        targets.append(y)
    return torch.cat(outputs).cpu(), torch.cat(targets).cpu()  # (targets of data held on a GPU are there)


def accuracy(log_posteriors: torch.Tensor, targets: torch.Tensor) -> float:
    return (log_posteriors.argmax(dim=1) == targets).double().mean().item()
