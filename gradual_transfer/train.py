"""The training loop: SGD, a step or plateau schedule, head warm-up, early stopping,
best-on-validation selection, and a checkpoint every epoch to resume from.

Short and explicit on purpose (no framework): one function, :func:`fit`, that a reader can
follow top to bottom. Reproducibility rules:

- the batch order of epoch e depends only on (seed, e), not on how many epochs ran before;
- the global torch RNG (dropout) is saved in every checkpoint and restored on resume;
- the learning-rate schedule is a few plain numbers, saved with the checkpoint;
so on CPU an interrupted run that resumes ends bit-identical to an uninterrupted one. (On CUDA
the CUDA RNG is saved too, but cuDNN's autotuned kernels are not deterministic.)
"""

from __future__ import annotations

import copy
import logging
import math
import queue
import shutil
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol

import torch
import torch.nn.functional as F

from gradual_transfer.checkpoints import load_file
from gradual_transfer.data.order import epoch_order
from gradual_transfer.io import atomic_path
from gradual_transfer.logs import progress
from gradual_transfer.models import GroupedNet

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gradual-transfer/training-checkpoint/1"


@dataclass(frozen=True)
class Recipe:
    """One task's `training` or `finetune` entry of the config."""

    batch_size: int
    epochs: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: dict
    early_stopping_patience: int
    seed: int
    head_warmup_iterations: int = 0

    @classmethod
    def from_config(cls, entry: dict) -> "Recipe":
        optimizer = entry["optimizer"]
        return cls(batch_size=entry["batch_size"], epochs=entry["epochs"], lr=optimizer["lr"],
                   momentum=optimizer["momentum"], nesterov=optimizer["nesterov"],
                   weight_decay=optimizer["weight_decay"], schedule=dict(entry["schedule"]),
                   early_stopping_patience=entry["early_stopping_patience"], seed=entry["seed"],
                   head_warmup_iterations=entry.get("head_warmup_iterations", 0))

    def optimizer(self, parameters, device: torch.device | None = None) -> torch.optim.SGD:
        """SGD of this recipe; given a `device`, the fused implementation with the learning rate as
        a tensor there (what a step captured as a CUDA graph needs: :class:`StepRunner`). The same
        update either way, up to rounding."""
        if device is None:
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay)
        return torch.optim.SGD(parameters, lr=torch.tensor(self.lr, device=device), momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay, fused=True)


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs that change speed, not what is learnt: not part of any fingerprint. (bf16 autocast
    changes the rounding on CUDA, as cuDNN's kernel choice does; it is a hardware setting.)"""

    amp_bf16: bool = False  # bf16 autocast (CUDA only)
    channels_last: bool = True
    prefetch: bool = False  # gather and pin batches on a background thread (CUDA only)
    frozen_cache_mb: int = 0  # cache the frozen groups' output of the training set up to this size
    resident_data_mb: int = 0  # copy the training and validation data to the GPU up to this size
    cuda_graphs: bool = False  # replay the training step as one CUDA graph (CUDA only; see StepRunner)
    progress_interval_s: float = 30.0

    @classmethod
    def from_config(cls, runtime: dict, arch_name: str, device: torch.device) -> "RuntimeOptions":
        """The config's ``runtime`` knobs for `device`: ``cpu``, or ``cuda`` with the entry for
        `arch_name` in ``cuda_by_architecture`` over it (the best settings differ by model:
        benchmarks/README.md)."""
        if device.type != "cuda":
            cpu = runtime["cpu"]
            return cls(channels_last=cpu["channels_last"], frozen_cache_mb=cpu["frozen_cache_mb"])
        knobs = {**runtime["cuda"], **runtime.get("cuda_by_architecture", {}).get(arch_name, {})}
        return cls(amp_bf16=knobs["amp_bf16"], channels_last=knobs["channels_last"], prefetch=knobs["prefetch"],
                   frozen_cache_mb=knobs["frozen_cache_mb"], resident_data_mb=knobs.get("resident_data_mb", 0),
                   cuda_graphs=knobs.get("cuda_graphs", False))


class BatchSource(Protocol):
    """Training or evaluation examples, served in batches of (inputs, integer targets)."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All examples once; shuffled with `generator`, in order when it is None."""
        ...


class TensorSource:
    """Examples held in memory as tensors; `prepare` turns a gathered batch into model input
    (e.g. uint8 pixels to normalised floats) so only batches are ever converted."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        # the targets live with the inputs: a batch is gathered by one index on their device
        self.inputs, self.targets, self.prepare = inputs, targets.long().to(inputs.device), prepare

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def resident(self) -> bool:
        """Held on a GPU (the frozen-prefix cache): no host work to prefetch."""
        return self.inputs.device.type != "cpu"

    def batches(self, batch_size, generator):
        order = epoch_order(len(self), generator, self.inputs.device)  # on the data's device: no copy per batch
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size]
            x = self.inputs[index]
            yield (self.prepare(x) if self.prepare else x), self.targets[index]


def place_on_device(sources: dict, device: torch.device, budget_mb: int,
                    splits: tuple[str, ...] = ("train", "validation")) -> dict:
    """`sources` with `splits` (in that order) copied to `device` while together they fit
    `budget_mb` (``runtime.cuda.resident_data_mb``); the others stay streamed from the host. The
    training set is read every step and validation every epoch; the test split once."""
    placed, used = dict(sources), 0.0
    if budget_mb <= 0:
        return placed
    for split in splits:
        source = sources[split]
        if not hasattr(source, "to_device"):
            continue
        size_mb = source.resident_bytes() / 2**20
        if used + size_mb > budget_mb:
            log.info("%s data stay on the host: %.0f MB would exceed runtime resident_data_mb = %d (%.0f MB used)",
                     split, size_mb, budget_mb, used)
            continue
        placed[split] = source.to_device(device)
        used += size_mb
        log.info("%s data on %s: %d examples, %.0f MB", split, device, len(source), size_mb)
    return placed


class LearningRate:
    """The learning rate of each epoch: steps at fractions of training, or a factor on plateau."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.plateau_lr = recipe.lr
        self.plateau_best = -math.inf
        self.plateau_bad_epochs = 0

    def for_epoch(self, epoch: int) -> float:
        schedule = self.recipe.schedule
        if schedule["kind"] == "step":
            passed = sum(epoch > round(m * self.recipe.epochs) for m in schedule["milestones"])
            return self.recipe.lr * schedule["gamma"] ** passed
        return self.plateau_lr

    def observe(self, score: float) -> None:
        """Validation score (higher is better) after an epoch; only the plateau schedule listens."""
        if self.recipe.schedule["kind"] != "plateau":
            return
        if score > self.plateau_best:
            self.plateau_best, self.plateau_bad_epochs = score, 0
        else:
            self.plateau_bad_epochs += 1
            if self.plateau_bad_epochs > self.recipe.schedule["patience"]:
                self.plateau_lr *= self.recipe.schedule["factor"]
                self.plateau_bad_epochs = 0
                log.info("validation stopped improving: learning rate → %.3g", self.plateau_lr)

    def state_dict(self) -> dict:
        return {"lr": self.plateau_lr, "best": self.plateau_best, "bad_epochs": self.plateau_bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_lr, self.plateau_best, self.plateau_bad_epochs = state["lr"], state["best"], state["bad_epochs"]


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    start_group: int = 0  # the first group a training step ran (l_c when the frozen prefix was cached)


def select_device() -> torch.device:
    """The device this process trains and evaluates on. A job (Snakemake's or the command line's)
    took the GPU lease first (:func:`gradual_transfer.jobs.lease`): the GPU it leased, the only
    one CUDA shows it (on the CPU where PyTorch cannot use CUDA), or the CPU where it leased
    none. A process that took no lease (a notebook, a benchmark): CUDA when PyTorch sees it."""
    from gradual_transfer.devices import held_lease

    lease = held_lease()
    if lease is not None and lease.device is None:
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device, options: RuntimeOptions):
    if device.type == "cuda" and options.amp_bf16:
        # autocast's cache of bf16 weight copies must be off for a graph capture (the copies
        # would be made once, at capture, and never again)
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not options.cuda_graphs)
    return nullcontext()


def _pinned(x: torch.Tensor) -> torch.Tensor:
    return x.pin_memory() if x.device.type == "cpu" else x  # (a cached batch may already be on the GPU)


def memory_format(options: RuntimeOptions) -> torch.memory_format:
    """The layout of 4-D batches and convolution weights that ``channels_last`` says."""
    return torch.channels_last if options.channels_last else torch.contiguous_format


def lay_out(model: GroupedNet, device: torch.device, options: RuntimeOptions) -> GroupedNet:
    """`model` on `device`, its convolution weights in the configured layout (either way, explicitly:
    a model trained or loaded in the other layout keeps it otherwise)."""
    return model.to(device, memory_format=memory_format(options))


def _to_device(x: torch.Tensor, device: torch.device, options: RuntimeOptions) -> torch.Tensor:
    """A batch on `device`; a 4-D one with the strides of the configured layout. Batches arrive in
    either (image pixels are stored channels-last and permuted; speech windows are contiguous),
    and cuDNN runs a convolution channels-last whenever its input is, whatever the setting says.
    (``Tensor.to(memory_format=...)`` also sets the strides of a 1-channel batch, which
    ``contiguous(memory_format=...)`` leaves alone: PyTorch counts it as both layouts.)"""
    if device.type == "cuda":
        # a copy from pageable memory blocks the host until the GPU has drained its queue;
        # from pinned memory it is queued, so the next batch is gathered while this one trains
        x = _pinned(x)
    # copied as it is, then re-laid on the device: a copy to other strides would first make a
    # pageable contiguous copy on the host (and wait for the GPU)
    x = x.to(device, non_blocking=True)
    if x.dim() == 4:
        x = x.to(memory_format=memory_format(options))
    return x


def prefetched(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], depth: int = 4,
               pin: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`batches`, gathered (and pinned) on a background thread up to `depth` ahead of the caller.

    On a GPU the training step is mostly kernel launches; gathering the next batch meanwhile
    (NumPy indexing releases the GIL) keeps the device busy. Order and content are unchanged;
    an error in the gatherer is raised here; leaving the loop early stops the thread.
    """
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def gather() -> None:
        try:
            for x, y in batches:
                if not hand_over((_pinned(x), _pinned(y)) if pin else (x, y)):
                    return
            hand_over(end)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            hand_over(error)

    worker = threading.Thread(target=gather, name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


@torch.no_grad()
def frozen_output(model: GroupedNet, source: BatchSource, batch_size: int, device: torch.device,
                  options: RuntimeOptions) -> TensorSource | None:
    """`source` as the output of the model's frozen groups, computed once (docs/method.md, "Frozen-prefix cache").

    Frozen groups are fixed functions of their input (eval mode, no augmentation), so every
    epoch would compute the same values again; with them cached, fine-tuning at high l_c pays
    only for the groups that train. Kept on `device`. None when nothing is frozen or the cache
    would exceed ``options.frozen_cache_mb``. Its batches come in the same order as the
    source's (both draw :func:`~gradual_transfer.data.order.epoch_order`), so training sees the
    same examples.
    """
    lc = model.frozen_groups
    if lc == 0 or options.frozen_cache_mb <= 0:
        return None
    model.eval()
    n = len(source)
    first, _ = next(iter(source.batches(1, None)))
    with _autocast(device, options):
        one = model.forward_groups(_to_device(first, device, options), 0, lc)
    size_mb = one.numel() * one.element_size() * n / 2**20
    if size_mb > options.frozen_cache_mb:
        log.info("frozen groups' output not cached: %.0f MB > runtime frozen_cache_mb = %d", size_mb,
                 options.frozen_cache_mb)
        return None
    # allocated once at its final size and filled batch by batch: at its peak the cache needs
    # itself and one batch, not twice itself (chunks, then their concatenation)
    layout = {"memory_format": memory_format(options)} if one.dim() == 4 else {}
    outputs = torch.empty((n, *one.shape[1:]), dtype=one.dtype, device=device, **layout)
    targets = torch.empty(n, dtype=torch.long, device=device)
    start = 0
    for x, y in source.batches(batch_size, None):
        with _autocast(device, options):
            outputs[start:start + len(y)] = model.forward_groups(_to_device(x, device, options), 0, lc)
        targets[start:start + len(y)] = y
        start += len(y)
    log.info("cached the output of the %d frozen groups for %d examples (%.0f MB on %s)", lc, n, size_mb,
             device.type)
    return TensorSource(outputs, targets)


def is_resident(source: BatchSource) -> bool:
    """Whether `source` holds its examples on the training device (no host work per batch)."""
    return bool(getattr(source, "resident", False))


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


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
        with _autocast(self.device, self.options):
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


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's learning rate; a tensor one (a graphed step reads it) is changed in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def _train_steps(runner: StepRunner, batches, desc: str = "", total: int | None = None) -> float:
    """One SGD step per batch; returns the mean training loss. With ``runner.start_group`` = k
    the batches hold the (cached) output of group k, not model inputs."""
    runner.model.train()
    runner.start_epoch()
    device, options = runner.device, runner.options
    if options.prefetch and device.type == "cuda":
        batches = prefetched(batches)
    for x, y in progress(batches, desc=desc, interval=options.progress_interval_s, total=total):
        runner(_to_device(x, device, options), _to_device(y, device, options))
    return runner.finish(desc)


def _diverged(error: TrainingDiverged, recipe: "Recipe") -> TrainingDiverged:
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
        with _autocast(device, options):
            logits = model(_to_device(x, device, options))
        outputs.append(F.log_softmax(logits.float(), dim=1))  # kept on the device: one copy back at the end
        targets.append(y)
    return torch.cat(outputs).cpu(), torch.cat(targets).cpu()  # (targets of data held on a GPU are there)


def accuracy(log_posteriors: torch.Tensor, targets: torch.Tensor) -> float:
    return (log_posteriors.argmax(dim=1) == targets).double().mean().item()


def _cycle(source: BatchSource, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches (for warm-up iterations that may span epochs)."""
    round_ = 0
    while True:
        yield from source.batches(batch_size, _epoch_generator(seed, -1 - round_))
        round_ += 1


def fit(model: GroupedNet, train: BatchSource, evaluate: Callable[[GroupedNet], dict], recipe: Recipe, *,
        checkpoint_dir: str | Path, fingerprint: dict, device: torch.device | None = None,
        options: RuntimeOptions = RuntimeOptions(), stop_after_epoch: int | None = None,
        on_epoch: Callable[[list[dict]], None] | None = None) -> FitResult:
    """Train `model` (its frozen groups already set) by `recipe`, selecting the best epoch on
    validation. `evaluate(model)` returns a dict with ``score`` (higher is better). `on_epoch`
    is given the whole history after the head warm-up and after every epoch (training curves).

    A checkpoint is written to `checkpoint_dir` after the head warm-up and after every epoch;
    a later call with the same `fingerprint` resumes from it. `stop_after_epoch` ends the call
    early (as an interruption would) and exists for tests.
    """
    device = device or select_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_path = checkpoint_dir / "last.pt"
    lay_out(model, device, options)
    lc = model.frozen_groups
    warmup = recipe.head_warmup_iterations if lc < model.num_groups else 0
    # a graphed step needs the fused optimizer with its learning rate on the device (StepRunner)
    optimizer_device = device if options.cuda_graphs else None

    state = None
    if checkpoint_path.exists():
        state = load_file(checkpoint_path, what="training checkpoint", format=CHECKPOINT_FORMAT)
        if state["fingerprint"] != fingerprint:
            log.info("checkpoint %s is from other settings; starting afresh", checkpoint_path)
            state = None
    schedule = LearningRate(recipe)
    if state is None:
        torch.manual_seed(recipe.seed)
        result = FitResult(best_state=copy.deepcopy(model.state_dict()), best_epoch=0, best_score=-math.inf)
        start_epoch = 1
        if warmup:
            log.info("head warm-up: %d iterations with groups 1..%d held", warmup, model.num_groups)
            model.freeze(model.num_groups)
            head_optimizer = recipe.optimizer(model.trainable_parameters())
            batches = _cycle(train, recipe.batch_size, recipe.seed)
            limited = (next(batches) for _ in range(warmup))
            started = time.perf_counter()
            eager = replace(options, cuda_graphs=False, prefetch=options.prefetch and not is_resident(train))
            try:
                loss = _train_steps(StepRunner(model, head_optimizer, device, eager, recipe.batch_size), limited,
                                    desc="the head warm-up", total=warmup)
            except TrainingDiverged as error:
                raise _diverged(error, recipe) from None
            model.freeze(lc)
            result.history.append({"epoch": 0, "phase": "head warm-up", "train_loss": loss,
                                   "seconds": time.perf_counter() - started})
            if on_epoch is not None:
                on_epoch(result.history)
        optimizer = recipe.optimizer(model.trainable_parameters(), optimizer_device)
        _save_checkpoint(checkpoint_path, fingerprint, model, optimizer, schedule, result, epoch=0)
    else:
        model.load_state_dict(state["model"])
        optimizer = recipe.optimizer(model.trainable_parameters(), optimizer_device)
        optimizer.load_state_dict(state["optimizer"])
        relay_state(optimizer)
        # the checkpoint's groups carry the implementation of the run that wrote it (maybe on
        # another machine, with other runtime settings): this run uses its own
        for group in optimizer.param_groups:
            lr = float(group["lr"])
            group.update(lr=lr if optimizer_device is None else torch.tensor(lr, device=optimizer_device),
                         fused=None if optimizer_device is None else True, foreach=None)
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        result = FitResult(best_state=state["best_state"], best_epoch=state["best_epoch"],
                           best_score=state["best_score"], history=state["history"])
        start_epoch = state["epoch"] + 1
        log.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"])

    cached = frozen_output(model, train, max(recipe.batch_size, 256), device, options)
    source, start_group = (cached, lc) if cached is not None else (train, 0)
    result.start_group = start_group
    runner = StepRunner(model, optimizer, device, replace(options, prefetch=options.prefetch and not is_resident(source)),
                        recipe.batch_size, start_group)
    for epoch in range(start_epoch, recipe.epochs + 1):
        if stop_after_epoch is not None and epoch > stop_after_epoch:
            return result
        if recipe.early_stopping_patience and epoch - result.best_epoch > recipe.early_stopping_patience:
            result.stopped_early = True
            break
        lr = schedule.for_epoch(epoch)
        set_learning_rate(optimizer, lr)
        started = time.perf_counter()
        try:
            loss = _train_steps(runner, source.batches(recipe.batch_size, _epoch_generator(recipe.seed, epoch)),
                                desc=f"epoch {epoch}/{recipe.epochs}", total=math.ceil(len(train) / recipe.batch_size))
        except TrainingDiverged as error:
            raise _diverged(error, recipe) from None
        seconds = time.perf_counter() - started  # the loss's .item() waited for the device: the epoch is done
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        schedule.observe(metrics["score"])
        if metrics["score"] > result.best_score:
            result.best_score, result.best_epoch = metrics["score"], epoch
            result.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        result.history.append({"epoch": epoch, "lr": lr, "train_loss": loss, "seconds": seconds,
                               "examples_per_s": len(train) / seconds, **metrics})
        if on_epoch is not None:
            on_epoch(result.history)
        log.info("epoch %d/%d lr %.3g train loss %.4f validation %s%s", epoch, recipe.epochs, lr, loss,
                 {k: round(v, 5) for k, v in metrics.items()}, " (best)" if result.best_epoch == epoch else "")
        _save_checkpoint(checkpoint_path, fingerprint, model, optimizer, schedule, result, epoch)
    if result.stopped_early:
        log.info("early stop: no better validation score for %d epochs", recipe.early_stopping_patience)
    log.info("best epoch %d, validation score %.5f", result.best_epoch, result.best_score)
    return result


def relay_state(optimizer: torch.optim.Optimizer) -> None:
    """Each parameter's state (momentum) in its parameter's layout. A checkpoint keeps the strides
    of the run that wrote it, which may have had the other ``channels_last``: CUDA's fused SGD
    refuses mismatched strides, and the CPU's silently pairs the wrong elements."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def _save_checkpoint(path: Path, fingerprint: dict, model: GroupedNet, optimizer, schedule: LearningRate,
                     result: FitResult, epoch: int) -> None:
    with atomic_path(path) as tmp:
        torch.save({
            "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_state": result.best_state, "best_epoch": result.best_epoch,
            "best_score": result.best_score, "history": result.history,
        }, tmp)


def clear_checkpoints(checkpoint_dir: str | Path) -> None:
    """Remove the resume state once the final outputs are written (it can be hundreds of MB)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
