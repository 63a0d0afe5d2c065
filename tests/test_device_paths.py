"""The GPU paths' CPU-checkable halves: data held on the device gives the streamed batches and
fits the card's memory (a fake device memory), an out-of-memory cache build trains uncached to
the same result, and the graph-ready training step (fused SGD with a tensor learning rate, bookkeeping on the
device, ragged batches eager, warm-up / capture / replay with the graph imitated eagerly)
trains as the eager one. The capture itself needs a GPU: benchmarks/gpu_check.py checks it
there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.images import ImageArrays, ImageSource, ResidentImageSource, write_images
from gradual_transfer.models import build_model
from gradual_transfer.tasks.speech import FrameSource, ResidentFrameSource
from gradual_transfer.batches import place_on_device
from gradual_transfer.recipe import RuntimeOptions
from gradual_transfer.steps import accuracy, predict, StepRunner
from gradual_transfer.train import fit
from test_engine import ARCH, CPU, evaluator, recipe, tensors_of, toy_data
from test_speech_data import write_random_file


def image_source(tmp_path, n: int) -> ImageSource:
    rng = np.random.default_rng(4)
    write_images(tmp_path / "images.arrow", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                 rng.integers(0, 10, n).astype(np.int16))
    return ImageSource(ImageArrays(tmp_path / "images.arrow"), [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])


def frame_source(tmp_path) -> FrameSource:
    write_random_file(tmp_path / "f.arrow", [5, 9, 1, 7, 3, 12, 4], rows_per_batch=2)  # windows never cross batches
    features = SpeechFeatures(tmp_path / "f.arrow")
    rng = np.random.default_rng(5)
    stats = {"mean": rng.standard_normal(40).tolist(), "std": (0.5 + rng.random(40)).tolist()}
    return FrameSource(features, [0, 2, 3, 5, 6], stats, context=3)  # a fold's utterances: not all rows


def same_batches(streamed, resident, batch_size: int, seed: int | None) -> int:
    generator = (lambda: torch.Generator().manual_seed(seed)) if seed is not None else (lambda: None)
    count = 0
    for (x, y), (rx, ry) in zip(streamed.batches(batch_size, generator()), resident.batches(batch_size, generator()),
                                strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry) and rx.dtype == x.dtype and ry.dtype == torch.long
        count += len(y)
    return count


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_resident_images_are_the_streamed_batches(tmp_path, seed):
    source = image_source(tmp_path, 70)
    resident = source.to_device(CPU)
    assert isinstance(resident, ResidentImageSource) and resident.input_shape == source.input_shape
    assert same_batches(source, resident, 16, seed) == 70  # a ragged last batch of 6 included
    assert source.resident_bytes() == resident.images.nbytes + resident.targets.nbytes


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_resident_frames_are_the_streamed_batches(tmp_path, seed):
    source = frame_source(tmp_path)
    resident = source.to_device(CPU)
    assert isinstance(resident, ResidentFrameSource) and resident.input_shape == source.input_shape
    assert same_batches(source, resident, 8, seed) == len(source) == 5 + 1 + 7 + 12 + 4
    held = resident.block.nbytes + resident.targets.nbytes + resident.first.nbytes + resident.last.nbytes
    assert source.resident_bytes() == held
    values = np.arange(len(source))
    assert all(np.array_equal(a, b) for a, b in zip(source.split_by_utterance(values),
                                                    resident.split_by_utterance(values), strict=True))


class Sized:
    """A source that only says how much device memory it would take."""

    def __init__(self, mb: float) -> None:
        self.mb = mb

    def __len__(self) -> int:
        return 1

    def resident_bytes(self) -> int:
        return int(self.mb * 2**20)

    def to_device(self, device):
        return ("on", device, self.mb)


def test_place_on_device_fills_train_then_validation_within_the_budget(caplog):
    sources = {"train": Sized(60), "validation": Sized(30), "test": Sized(1)}
    assert place_on_device(sources, CPU, 0) == sources
    both = place_on_device(sources, CPU, 90)
    assert both["train"] == ("on", CPU, 60) and both["validation"] == ("on", CPU, 30) and both["test"] is sources["test"]
    with caplog.at_level("INFO", logger="gradual_transfer"):
        train_only = place_on_device(sources, CPU, 89)
    assert train_only["train"] == ("on", CPU, 60) and train_only["validation"] is sources["validation"]
    assert "validation data stay on the host: 30 MB would exceed runtime resident_data_mb = 89" in caplog.text
    validation_only = place_on_device(sources, CPU, 40)
    assert validation_only["train"] is sources["train"] and validation_only["validation"] == ("on", CPU, 30)
    in_memory = {"train": toy_data(3, 10, 1), "validation": Sized(1)}  # tensors already in memory: left alone
    assert place_on_device(in_memory, CPU, 100)["train"] is in_memory["train"]


# --- memory sized to the card: a fake device memory stands in for torch.cuda's -----------------

def fake_card(monkeypatch, total_mb: float, free_mb: float, held_mb: float = 0.0, sharing: int = 1) -> None:
    """The device every placement asks about (the CPU here) as a card of this memory."""
    from gradual_transfer import device_memory

    memory = device_memory.DeviceMemory(total_mb, free_mb, held_mb, sharing, peak_mb=held_mb * 0.9)
    monkeypatch.setattr(device_memory, "read", lambda device: memory)


class Unplaceable(Sized):
    def to_device(self, device):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")


def test_data_go_to_the_card_within_this_jobs_share_of_it(monkeypatch, caplog):
    """A 16 GB card, 10 GB free, two jobs per GPU: this job may place 8 GB less 2 GB kept for
    training; the config's resident_data_mb stays a cap; an out-of-memory copy leaves the split
    on the host (the same batches)."""
    fake_card(monkeypatch, total_mb=16384, free_mb=10000, sharing=2)
    sources = {"train": Sized(5000), "validation": Sized(6500), "test": Sized(1)}
    with caplog.at_level("INFO", logger="gradual_transfer"):
        placed = place_on_device(sources, CPU, 16384)
    assert placed["train"] == ("on", CPU, 5000) and placed["validation"] is sources["validation"]
    assert ("validation data stay on the host: 6,500 MB would exceed this job's room on the GPU, 6,144 MB (10,000 of "
            "16,384 MB free, 0 MB held by this job, one of 2 jobs sharing it (runtime.cuda.jobs_per_gpu); 2048 MB kept "
            "for training)") in caplog.text
    fake_card(monkeypatch, total_mb=16384, free_mb=16384, sharing=1)
    assert place_on_device(sources, CPU, 16384)["validation"] == ("on", CPU, 6500)
    assert place_on_device(sources, CPU, 4096)["train"] is sources["train"]  # the setting is a cap
    caplog.clear()
    with caplog.at_level("INFO", logger="gradual_transfer"):
        kept = place_on_device({"train": Unplaceable(10), "validation": Sized(10)}, CPU, 4096)
    assert isinstance(kept["train"], Unplaceable) and kept["validation"] == ("on", CPU, 10)
    assert "train data stay on the host: out of memory copying 10 MB" in caplog.text


def test_the_frozen_prefix_cache_fits_the_card_or_the_job_trains_uncached_to_the_same_result(tmp_path, monkeypatch,
                                                                                                caplog):
    """A card with no room for the cache, and an out-of-memory error while building it: the job
    trains without it (logged), exactly as with the cache off."""
    from gradual_transfer import frozen_prefix

    from gradual_transfer.frozen_prefix import frozen_output

    model, train = build_model(ARCH, 3, (3, 8, 8)).freeze(3), toy_data(3, 90, 31)
    options = RuntimeOptions(channels_last=False, frozen_cache_mb=64)
    fake_card(monkeypatch, total_mb=4096, free_mb=2100)  # room: 52 MB; the toy cache needs less than 1
    assert frozen_output(model, train, 16, CPU, options) is not None
    fake_card(monkeypatch, total_mb=4096, free_mb=2048)  # all of it kept for training
    with caplog.at_level("INFO", logger="gradual_transfer"):
        assert frozen_output(model, train, 16, CPU, options) is None
    assert "frozen groups' output not cached: 0 MB would exceed this job's room on the GPU, 0 MB" in caplog.text

    def out_of_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 7.20 GiB")

    uncached_model, uncached = fit_toy(tmp_path, "off", RuntimeOptions(channels_last=False), lc=3)
    monkeypatch.setattr(frozen_prefix, "_fill", out_of_memory)
    fake_card(monkeypatch, total_mb=16384, free_mb=16384)
    caplog.clear()
    with caplog.at_level("INFO", logger="gradual_transfer"):
        retried_model, retried = fit_toy(tmp_path, "oom", RuntimeOptions(channels_last=False, frozen_cache_mb=64), lc=3)
    assert retried.start_group == 0
    assert "frozen groups' output not cached: out of memory building its" in caplog.text
    assert "training without the cache, to the same result" in caplog.text
    assert [h["train_loss"] for h in retried.history] == [h["train_loss"] for h in uncached.history]
    for (name, a), b in zip(tensors_of(uncached_model).items(), tensors_of(retried_model).values()):
        assert torch.equal(a, b), name


def test_an_out_of_memory_error_in_training_is_one_sentence_with_the_numbers_and_the_settings(monkeypatch):
    from gradual_transfer.device_memory import OutOfMemory, out_of_memory_named
    from gradual_transfer.devices import DeviceError

    fake_card(monkeypatch, total_mb=16384, free_mb=310, held_mb=7900, sharing=2)
    with pytest.raises(OutOfMemory) as refused:
        with out_of_memory_named(CPU, "model_a"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(refused.value, DeviceError)  # the command line and a job's log print it as one sentence
    assert str(refused.value) == (
        "the GPU ran out of memory training model_a (310 of 16,384 MB free, 7,900 MB held by this job, one of 2 jobs "
        "sharing it (runtime.cuda.jobs_per_gpu), at most 7,110 MB in use by its tensors): lower "
        "runtime.cuda.jobs_per_gpu, or lower resident_data_mb and frozen_cache_mb for model_a under "
        "runtime.cuda_by_architecture (placements only: the result is the same), or free the GPU of other programs.")


def test_fit_on_resident_data_is_bit_identical_to_streamed(tmp_path):
    source = image_source(tmp_path, 40)
    validation = toy_data(10, 20, 3, (3, 32, 32))
    settings = recipe(batch_size=16, epochs=2, head_warmup_iterations=2)
    arch = {**ARCH, "lc": [0, 7]}

    def trained(train, where):
        torch.manual_seed(2)
        model = build_model(arch, 10, (3, 32, 32))
        result = fit(model, train, evaluator(validation), settings, checkpoint_dir=tmp_path / where, fingerprint={},
                     device=CPU, options=RuntimeOptions(channels_last=False))
        return model, result

    streamed_model, streamed = trained(source, "streamed")
    resident_model, resident = trained(source.to_device(CPU), "resident")
    assert [h["train_loss"] for h in streamed.history] == [h["train_loss"] for h in resident.history]
    for (name, a), b in zip(tensors_of(streamed_model).items(), tensors_of(resident_model).values()):
        assert torch.equal(a, b), name


GRAPH_READY = RuntimeOptions(channels_last=False, cuda_graphs=True)


def fit_toy(tmp_path, where: str, options: RuntimeOptions, **changes):
    torch.manual_seed(1)
    model = build_model(ARCH, 3, (3, 8, 8)).freeze(changes.pop("lc", 0))
    train, val = toy_data(3, 90, 31), toy_data(3, 30, 32)  # 90 = 5 batches of 16 and a ragged one of 10
    settings = recipe(epochs=4, head_warmup_iterations=3, schedule={"kind": "step", "milestones": [0.5], "gamma": 0.1})
    result = fit(model, train, evaluator(val), settings, checkpoint_dir=tmp_path / where, fingerprint={}, device=CPU,
                 options=options, **changes)
    return model, result


@pytest.mark.parametrize("lc", [0, 3])
def test_the_graph_ready_step_trains_as_the_eager_step(tmp_path, lc):
    """Fused SGD with the learning rate as a tensor changed in place (the schedule drops it ×0.1
    after epoch 2: a rate that stayed would change everything after) and the loss kept on the
    device give the eager run, up to the fused kernel's rounding."""
    eager_model, eager = fit_toy(tmp_path, "eager", RuntimeOptions(channels_last=False), lc=lc)
    ready_model, ready = fit_toy(tmp_path, "ready", GRAPH_READY, lc=lc)
    assert [h["lr"] for h in ready.history[1:]] == pytest.approx([0.05, 0.05, 0.005, 0.005])
    for a, b in zip(eager.history, ready.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for (name, a), b in zip(tensors_of(eager_model).items(), tensors_of(ready_model).values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name


EAGER = RuntimeOptions(channels_last=False)


@pytest.mark.parametrize("before,after", [(EAGER, GRAPH_READY), (GRAPH_READY, EAGER)], ids=["eager→ready", "ready→eager"])
def test_a_checkpoint_resumes_under_the_other_optimizer(tmp_path, before, after):
    """A job interrupted on one machine may resume on another with other runtime settings: the
    checkpoint's learning rate and implementation are replaced by this run's (a number, or the
    device tensor that the graph reads)."""
    whole_model, whole = fit_toy(tmp_path, "whole", EAGER)
    fit_toy(tmp_path, "split", before, stop_after_epoch=2)
    resumed_model, resumed = fit_toy(tmp_path, "split", after)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2, 3, 4]
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for (name, a), b in zip(tensors_of(whole_model).items(), tensors_of(resumed_model).values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name
    saved = torch.load(tmp_path / "split" / "last.pt", weights_only=False)["optimizer"]["param_groups"][0]
    assert isinstance(saved["lr"], torch.Tensor) == after.cuda_graphs and bool(saved["fused"]) == after.cuda_graphs


def test_the_step_runner_counts_every_example_and_finds_the_first_bad_step():
    model = build_model(ARCH, 3, (3, 8, 8)).train()
    runner = StepRunner(model, torch.optim.SGD(model.parameters(), lr=0.0), CPU, GRAPH_READY, batch_size=16)
    data = toy_data(3, 40, 1)
    torch.manual_seed(5)
    runner.start_epoch()
    for x, y in data.batches(16, None):  # 16, 16 and a ragged 8
        runner(x, y)
    torch.manual_seed(5)  # the same dropout draws; a rate of 0 leaves the weights as they were
    with torch.no_grad():
        expected = sum(torch.nn.functional.cross_entropy(model(x), y, reduction="sum").item()
                       for x, y in data.batches(16, None))
    assert runner.count == 40 and int(runner.steps) == 3 and int(runner.first_bad) == -1
    assert runner.finish("epoch 1") == pytest.approx(expected / 40, rel=1e-5)
    runner.start_epoch()
    x, y = next(data.batches(16, None))
    for batch in (x, torch.full_like(x, float("nan")), x):
        runner(batch, y)
    with pytest.raises(Exception, match="epoch 2: the training loss became NaN or infinite at step 2"):
        runner.finish("epoch 2")


def test_posteriors_of_resident_frames_are_written_as_from_the_file(tmp_path):
    """An ASR job's dev split is resident (evaluated every epoch) and then written for the
    decoder: the same utterances, ids and values."""
    import kaldiio

    from gradual_transfer.tasks.speech import write_posteriors
    from test_engine import SPEECH_ARCH

    source = frame_source(tmp_path)
    model = build_model(SPEECH_ARCH, 8, source.input_shape)
    for name, s in (("streamed", source), ("resident", source.to_device(CPU))):
        write_posteriors(model, s, tmp_path / f"{name}.ark", tmp_path / f"{name}.scp", 16, CPU, EAGER)
    streamed, resident = (dict(kaldiio.load_scp(str(tmp_path / f"{n}.scp"))) for n in ("streamed", "resident"))
    assert list(streamed) == list(resident) == ["u0", "u2", "u3", "u5", "u6"]
    assert all(np.array_equal(streamed[u], resident[u]) for u in streamed)


def test_ser_scores_of_resident_frames_equal_the_streamed_ones(tmp_path):
    """SER validation (every epoch) decides per utterance from its frames: resident data must
    split them back into the same utterances."""
    from gradual_transfer.data.arrow import SpeechWriter, speech_schema
    from gradual_transfer.tasks.speech import evaluator
    from test_engine import SPEECH_ARCH

    rng = np.random.default_rng(8)
    with SpeechWriter(tmp_path / "ser.arrow", speech_schema(40), rows_per_batch=3) as writer:
        for u in range(9):
            n = int(rng.integers(4, 15))
            writer.add({"utt_id": f"u{u}", "speaker": f"s{u % 3}", "num_frames": n,
                        "feats": rng.normal(size=(n, 40)).astype(np.float32),
                        "targets": np.where(rng.random(n) < 0.3, 4, u % 4).astype(np.int16)})  # emotion + silence
    stats = {"mean": [0.0] * 40, "std": [1.0] * 40}
    source = FrameSource(SpeechFeatures(tmp_path / "ser.arrow"), [0, 1, 2, 4, 5, 7, 8], stats, context=2)
    model = build_model(SPEECH_ARCH, 5, source.input_shape)
    from gradual_transfer.data.kinds import KINDS
    evaluate = evaluator(KINDS["iemocap"], {"classes": 5}, 16, CPU, EAGER)
    streamed, resident = evaluate(model, source), evaluate(model, source.to_device(CPU))
    assert streamed == resident and streamed["utterances"] == 7


class EagerGraphs:
    """:class:`CudaGraphs` imitated on a CPU: a stream is nothing, and a captured step is its work
    run again at each replay, after zeroing the gradients in place (a graph's backward writes
    the static gradients it allocated at capture, where an eager backward would add to them).
    Counts what it is asked to do."""

    def __init__(self, model, fail: bool = False) -> None:
        self.model, self.fail = model, fail
        self.side_steps = self.captures = self.replays = 0

    def new_stream(self):
        return "capture stream"

    def run_on(self, stream, work) -> None:
        assert stream == "capture stream"
        self.side_steps += 1
        work()

    def capture(self, work, stream):
        if self.fail:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        self.captures += 1

        def replay() -> None:
            self.replays += 1
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.zero_()
            work()
        return replay  # capturing records the step without running it


def run_epochs(graphs_for, epochs: int = 3):
    """Three epochs of StepRunner over 90 toy examples (5 batches of 16 and a ragged 10), the
    learning rate ×0.1 for the last; returns the model, the losses and the runner's graphs."""
    from gradual_transfer.recipe import set_learning_rate

    torch.manual_seed(1)
    model = build_model(ARCH, 3, (3, 8, 8)).train()
    optimizer = recipe().optimizer(model.trainable_parameters(), CPU)
    graphs = graphs_for(model)
    runner = StepRunner(model, optimizer, CPU, GRAPH_READY, batch_size=16, graphs=graphs)
    data, losses = toy_data(3, 90, 31), []
    torch.manual_seed(7)  # the dropout draws
    for epoch in range(1, epochs + 1):
        set_learning_rate(optimizer, 0.05 if epoch < epochs else 0.005)
        runner.start_epoch()
        for x, y in data.batches(16, torch.Generator().manual_seed(epoch)):
            runner(x, y)
        losses.append(runner.finish(f"epoch {epoch}"))
    return model, losses, graphs


def test_the_graphed_step_machinery_trains_as_the_eager_step():
    """Warm-up on the capture stream, one capture, replays through the static batch, the ragged
    batch eager on gradients zeroed in place: with the graph imitated eagerly, exactly the eager
    training (a batch not copied into the static input, or gradients added to, would differ)."""
    eager_model, eager_losses, _ = run_epochs(lambda model: None)
    graphed_model, graphed_losses, graphs = run_epochs(EagerGraphs)
    assert (graphs.side_steps, graphs.captures, graphs.replays) == (3, 1, 3 * 5 - 3 - 1 + 1)
    assert graphed_losses == eager_losses
    for (name, a), b in zip(tensors_of(eager_model).items(), tensors_of(graphed_model).values()):
        assert torch.equal(a, b), name


def test_a_failed_capture_names_the_setting_to_change():
    from gradual_transfer.steps import GraphCaptureFailed

    with pytest.raises(GraphCaptureFailed, match=r"failed \(CUDA error: operation not permitted when stream is "
                                                 r"capturing\)\. Set cuda_graphs: false for this architecture "
                                                 r"under runtime.cuda_by_architecture"):
        run_epochs(lambda model: EagerGraphs(model, fail=True))


def small_frame_source(tmp_path) -> FrameSource:
    """Frames of six utterances with targets of five classes (trainable)."""
    from gradual_transfer.data.arrow import SpeechWriter, speech_schema

    rng = np.random.default_rng(9)
    with SpeechWriter(tmp_path / "frames.arrow", speech_schema(40), rows_per_batch=2) as writer:
        for u, n in enumerate([9, 4, 12, 7, 5, 11]):
            writer.add({"utt_id": f"u{u}", "speaker": f"s{u % 2}", "num_frames": n,
                        "feats": rng.normal(size=(n, 40)).astype(np.float32),
                        "targets": rng.integers(0, 5, n).astype(np.int16)})
    stats = {"mean": [0.0] * 40, "std": [1.0] * 40}
    return FrameSource(SpeechFeatures(tmp_path / "frames.arrow"), range(6), stats, context=3)


def canonical_strides(shape, channels_last: bool) -> tuple[int, ...]:
    """The strides PyTorch gives a new tensor of `shape` in that layout (a 1-channel batch has
    distinct strides in the two, though PyTorch calls either contiguous in both)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty(shape, memory_format=layout).stride()


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", ["images", "frames"])
@pytest.mark.parametrize("where", ["streamed", "resident", "cached prefix"])
def test_batches_reach_the_model_in_the_layout_the_settings_say(tmp_path, channels_last, kind, where):
    """Image batches are gathered channels-last (NHWC pixels permuted), speech batches
    contiguous; whatever the source, what reaches the model in training and evaluation has the
    strides of the configured layout, as do the model's convolution weights (cuDNN runs
    channels-last when either operand is, whatever the config says)."""
    from test_engine import SPEECH_ARCH

    if kind == "images":
        source, arch, classes, lc = image_source(tmp_path, 40), ARCH, 10, 3
    else:
        source, arch, classes, lc = small_frame_source(tmp_path), SPEECH_ARCH, 5, 1
    torch.manual_seed(0)
    model = build_model(arch, classes, source.input_shape)
    cached = where == "cached prefix"
    if cached:
        model.freeze(lc)
    train = source.to_device(CPU) if where == "resident" else source
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append((tuple(args[0].shape), args[0].stride())))
    options = RuntimeOptions(channels_last=channels_last, frozen_cache_mb=64 if cached else 0)
    evaluate = lambda m: {"score": accuracy(*predict(m, train, 16, CPU, options))}  # noqa: E731
    result = fit(model, train, evaluate, recipe(batch_size=16, epochs=1), checkpoint_dir=tmp_path / "ck",
                 fingerprint={}, device=CPU, options=options)
    assert result.start_group == (lc if cached else 0)
    four_d = [(shape, strides) for shape, strides in seen if len(shape) == 4]
    assert len(four_d) >= 4  # training batches (a ragged one included) and evaluation batches
    assert all(strides == canonical_strides(shape, channels_last) for shape, strides in four_d), four_d
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(w.stride() == canonical_strides(w.shape, channels_last) for w in weights)


def resumed_across_layouts(tmp_path, where: str, before: bool, after: bool, graph_ready: bool):
    """Two epochs in one layout, the checkpoint resumed for two more in `after`."""
    fit_toy(tmp_path, where, RuntimeOptions(channels_last=before, cuda_graphs=graph_ready), stop_after_epoch=2)
    return fit_toy(tmp_path, where, RuntimeOptions(channels_last=after, cuda_graphs=graph_ready))


@pytest.mark.parametrize("graph_ready", [False, True], ids=["sgd", "fused sgd"])
@pytest.mark.parametrize("before,after", [(False, True), (True, False)], ids=["contiguous→channels_last",
                                                                              "channels_last→contiguous"])
def test_a_checkpoint_resumes_in_the_other_layout(tmp_path, graph_ready, before, after):
    """The momentum buffers of a checkpoint have the strides of the run that wrote it; resumed in
    the other layout they are re-laid like their parameters (fused SGD refuses mismatched
    strides on CUDA, and on a CPU it computes a wrong update). The fused run then trains as
    the eager (unfused) one resumed across the same change: the layouts' own rounding differs,
    so the reference changes layout too."""
    model, result = resumed_across_layouts(tmp_path, "tested", before, after, graph_ready)
    state = torch.load(tmp_path / "tested" / "last.pt", weights_only=False)["optimizer"]["state"]
    buffers = [state[i]["momentum_buffer"] for i in range(len(model.trainable_parameters()))]
    assert [b.stride() for b in buffers] == [p.stride() for p in model.trainable_parameters()]
    if not graph_ready:
        return
    eager_model, eager = resumed_across_layouts(tmp_path, "eager", before, after, graph_ready=False)
    for a, b in zip(eager.history, result.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    for (name, a), b in zip(tensors_of(eager_model).items(), tensors_of(model).values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), (name, (a - b).abs().max().item())
