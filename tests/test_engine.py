"""The transfer engine: frozen groups stay bit-identical, warm-up trains only the head,
interrupted training resumes bit-identically, checkpoints fail clearly."""

from __future__ import annotations

import copy
import math
import threading

import pytest
import torch

from gradual_transfer.checkpoints import CheckpointError, load_model_file, model_from_file, save_model
from gradual_transfer.batches import prefetched, TensorSource
from gradual_transfer.recipe import LearningRate, Recipe, RuntimeOptions
from gradual_transfer.steps import accuracy, predict
from gradual_transfer.train import fit
from gradual_transfer.transfer import transfer_model

ARCH = {"kind": "densenet", "depth": 7, "growth_rate": 4, "init_features": 8, "dropout": 0.2, "lc": [0, 1, 3, 7]}
SPEECH_ARCH = {"kind": "convnet", "conv_groups": [{"channels": [4], "first_kernel": [3, 2], "pool": True}],
               "fc_units": [16, 16], "dropout": 0.4, "lc": [0, 1, 2, 3]}
CPU = torch.device("cpu")
OPTIONS = RuntimeOptions(channels_last=False)


def recipe(**changes) -> Recipe:
    base = dict(batch_size=16, epochs=3, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4,
                schedule={"kind": "step", "milestones": [0.5], "gamma": 0.1}, early_stopping_patience=0,
                seed=3, head_warmup_iterations=0)
    return Recipe(**{**base, **changes})


def toy_data(classes: int, n: int, seed: int, shape=(3, 8, 8)) -> TensorSource:
    """Class-dependent means (fixed per task) plus noise drawn from `seed`: learnable in a few epochs."""
    centres = torch.randn(classes, *shape, generator=torch.Generator().manual_seed(100 + classes))
    y = torch.arange(n) % classes
    x = centres[y] + 0.8 * torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))
    return TensorSource(x, y)


def evaluator(source: TensorSource):
    def evaluate(model):
        log_posteriors, targets = predict(model, source, 32, CPU, OPTIONS)
        return {"score": accuracy(log_posteriors, targets)}
    return evaluate


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    """A small trained 'primary' model file (4 classes), shared by the tests."""
    torch.manual_seed(0)
    from gradual_transfer.models import build_model

    model = build_model(ARCH, 4, (3, 8, 8))
    train, val = toy_data(4, 160, 1), toy_data(4, 32, 2)
    result = fit(model, train, evaluator(val), recipe(epochs=4, schedule={"kind": "step", "milestones": [0.75], "gamma": 0.1}), checkpoint_dir=tmp_path_factory.mktemp("ck"),
                 fingerprint={"primary": 1}, device=CPU, options=OPTIONS)
    model.load_state_dict(result.best_state)
    path = tmp_path_factory.mktemp("primary") / "model.pt"
    save_model(path, model, arch_name="tiny", arch=ARCH, num_classes=4, input_shape=[3, 8, 8], meta={"epochs": 2})
    return load_model_file(path, "tiny", ARCH)


def tensors_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm running statistics included)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def group_state(state: dict, model, index: int) -> dict:
    prefix = f"body.{model.group_names[index]}."
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def finetune(source, lc, tmp_path, **changes):
    model = transfer_model(source, "tiny", ARCH, 3, lc, seed=5)
    result = fit(model, toy_data(3, 96, 11), evaluator(toy_data(3, 30, 12)), recipe(**changes),
                 checkpoint_dir=tmp_path / f"lc{lc}", fingerprint={"lc": lc, **changes}, device=CPU, options=OPTIONS)
    return model, result


@pytest.mark.parametrize("lc", [0, 1, 3, 5])
def test_frozen_groups_are_bit_identical_after_finetuning(primary, tmp_path, lc):
    model, result = finetune(primary, lc, tmp_path, head_warmup_iterations=4)
    source, tuned = primary["state_dict"], tensors_of(model)
    for index in range(model.num_groups):
        if index < lc:
            assert same(group_state(source, model, index), group_state(tuned, model, index)), model.group_names[index]
        else:
            assert not same(group_state(source, model, index), group_state(tuned, model, index)), model.group_names[index]
    assert same(group_state(source, model, 0) if lc else {}, group_state(result.best_state, model, 0) if lc else {})
    assert tuned["head.weight"].shape == (3, model.head.in_features)


def test_feature_extractor_lc_equals_lh_trains_only_the_head(primary, tmp_path):
    model, _ = finetune(primary, 7, tmp_path, head_warmup_iterations=4)
    source, tuned = primary["state_dict"], tensors_of(model)
    assert same({k: v for k, v in source.items() if k.startswith("body.")},
                {k: v for k, v in tuned.items() if k.startswith("body.")})
    history_phases = [h.get("phase") for h in _.history]
    assert "head warm-up" not in history_phases  # no separate warm-up when only the head trains


def test_head_warmup_changes_only_the_head(primary, tmp_path):
    model = transfer_model(primary, "tiny", ARCH, 3, 1, seed=5)
    head_before = tensors_of(model.head)
    result = fit(model, toy_data(3, 96, 11), evaluator(toy_data(3, 30, 12)), recipe(head_warmup_iterations=5),
                 checkpoint_dir=tmp_path, fingerprint={}, device=CPU, options=OPTIONS, stop_after_epoch=0)
    tuned = tensors_of(model)
    assert same({k: v for k, v in primary["state_dict"].items() if k.startswith("body.")},
                {k: v for k, v in tuned.items() if k.startswith("body.")})
    assert not same(head_before, tensors_of(model.head))
    assert result.history[0]["phase"] == "head warm-up"
    assert model.frozen_groups == 1  # back to l_c after the warm-up


def test_fresh_head_is_seeded_and_body_copied(primary):
    a = transfer_model(primary, "tiny", ARCH, 3, 2, seed=5)
    b = transfer_model(primary, "tiny", ARCH, 3, 2, seed=5)
    c = transfer_model(primary, "tiny", ARCH, 3, 2, seed=6)
    assert torch.equal(a.head.weight, b.head.weight) and not torch.equal(a.head.weight, c.head.weight)
    assert torch.equal(a.body.conv0.weight, primary["state_dict"]["body.conv0.weight"])


@pytest.mark.parametrize("lc", [1, 3, 7])
def test_reinit_copies_and_freezes_the_first_lc_groups_and_starts_the_rest_where_a_primary_starts(primary, tmp_path,
                                                                                               lc):
    """Yosinski's design: groups below l_c from the source, frozen; the groups above and the head
    as a fresh model of the job's seed initialises them (the target primary's own starting point)."""
    from gradual_transfer.models import build_model

    model = transfer_model(primary, "tiny", ARCH, 3, lc, seed=5, upper_groups="reinit")
    torch.manual_seed(5)
    fresh = tensors_of(build_model(ARCH, 3, (3, 8, 8)))
    built = tensors_of(model)
    for index in range(model.num_groups):
        expected = primary["state_dict"] if index < lc else fresh
        assert same(group_state(expected, model, index), group_state(built, model, index)), model.group_names[index]
        if index >= lc and group_state(built, model, index):  # a trained group differs from its initial state
            assert not same(group_state(primary["state_dict"], model, index), group_state(built, model, index))
    assert torch.equal(model.head.weight, fresh["head.weight"])
    assert model.frozen_groups == lc and all(not p.requires_grad for p in model.body[:lc].parameters())
    # frozen through training, the rest trains; no head warm-up in the training recipe
    result = fit(model, toy_data(3, 96, 11), evaluator(toy_data(3, 30, 12)), recipe(epochs=1),
                 checkpoint_dir=tmp_path, fingerprint={}, device=CPU, options=OPTIONS)
    tuned = tensors_of(model)
    for index in range(lc):
        assert same(group_state(primary["state_dict"], model, index), group_state(tuned, model, index))
    assert [h.get("phase", "train") for h in result.history] == ["train"]


def test_copy_and_reinit_differ_only_above_lc(primary):
    copied = tensors_of(transfer_model(primary, "tiny", ARCH, 3, 3, seed=5))
    reinit = tensors_of(transfer_model(primary, "tiny", ARCH, 3, 3, seed=5, upper_groups="reinit"))
    model = transfer_model(primary, "tiny", ARCH, 3, 3, seed=5)
    assert all(same(group_state(copied, model, i), group_state(reinit, model, i)) for i in range(3))
    assert not same(group_state(copied, model, 3), group_state(reinit, model, 3))
    assert torch.equal(copied["head.weight"], reinit["head.weight"])  # both fresh from the seed
    with pytest.raises(ValueError, match="upper_groups"):
        transfer_model(primary, "tiny", ARCH, 3, 3, seed=5, upper_groups="random")


def test_transfer_refuses_another_architecture(primary):
    with pytest.raises(CheckpointError, match="cannot copy its layers"):
        transfer_model(primary, "tiny", {**ARCH, "growth_rate": 6}, 3, 1, seed=0)


@pytest.mark.parametrize("arch,shape", [(ARCH, (3, 8, 8)), (SPEECH_ARCH, (1, 5, 8))])
def test_interrupted_training_resumes_bit_identically(tmp_path, arch, shape):
    from gradual_transfer.models import build_model

    train, val = toy_data(3, 80, 21, shape), toy_data(3, 30, 22, shape)
    settings = recipe(epochs=4, schedule={"kind": "plateau", "factor": 0.5, "patience": 0}, head_warmup_iterations=0)

    def fresh():
        torch.manual_seed(1)
        return build_model(arch, 3, shape).freeze(1)

    straight = fresh()
    expected = fit(straight, train, evaluator(val), settings, checkpoint_dir=tmp_path / "a", fingerprint={"x": 1},
                   device=CPU, options=OPTIONS)
    interrupted = fresh()
    fit(interrupted, train, evaluator(val), settings, checkpoint_dir=tmp_path / "b", fingerprint={"x": 1},
        device=CPU, options=OPTIONS, stop_after_epoch=2)
    resumed_model = fresh()  # a new process would rebuild the model, then resume
    resumed = fit(resumed_model, train, evaluator(val), settings, checkpoint_dir=tmp_path / "b", fingerprint={"x": 1},
                  device=CPU, options=OPTIONS)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    timing = ("seconds", "examples_per_s")  # measured, so they differ between runs
    assert [{k: v for k, v in h.items() if k not in timing} for h in resumed.history] == [
        {k: v for k, v in h.items() if k not in timing} for h in expected.history]
    assert same(tensors_of(resumed_model), tensors_of(straight))
    assert same(resumed.best_state, expected.best_state)


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path):
    from gradual_transfer.models import build_model

    train, val = toy_data(3, 40, 1), toy_data(3, 20, 2)
    torch.manual_seed(0)
    model = build_model(ARCH, 3, (3, 8, 8))
    fit(model, train, evaluator(val), recipe(epochs=2), checkpoint_dir=tmp_path, fingerprint={"lr": 1},
        device=CPU, options=OPTIONS, stop_after_epoch=1)
    result = fit(model, train, evaluator(val), recipe(epochs=2), checkpoint_dir=tmp_path, fingerprint={"lr": 2},
                 device=CPU, options=OPTIONS)
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_early_stopping_and_best_epoch_selection(tmp_path):
    from gradual_transfer.models import build_model

    scores = iter([0.5, 0.7, 0.6, 0.6, 0.6, 0.9])
    torch.manual_seed(0)
    model = build_model(ARCH, 3, (3, 8, 8))
    result = fit(model, toy_data(3, 32, 1), lambda m: {"score": next(scores)}, recipe(epochs=6, early_stopping_patience=2),
                 checkpoint_dir=tmp_path, fingerprint={}, device=CPU, options=OPTIONS)
    assert result.stopped_early and result.best_epoch == 2 and result.best_score == 0.7
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]


def test_learning_rate_schedules():
    step = LearningRate(recipe(epochs=300, lr=0.1, schedule={"kind": "step", "milestones": [0.5, 0.75], "gamma": 0.1}))
    assert [step.for_epoch(e) for e in (1, 150, 151, 225, 226, 300)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    plateau = LearningRate(recipe(lr=0.08, schedule={"kind": "plateau", "factor": 0.5, "patience": 1}))
    for score in (0.5, 0.6, 0.6, 0.55):
        plateau.observe(score)
    assert plateau.for_epoch(5) == pytest.approx(0.04)  # two epochs without improvement > patience 1


def test_recipe_reads_the_config(paper_config):
    r = Recipe.from_config(paper_config["tasks"]["ser"]["finetune"])
    assert r.head_warmup_iterations == 1000 and r.schedule["kind"] == "plateau" and r.nesterov is False
    assert Recipe.from_config(paper_config["tasks"]["cifar10"]["training"]).weight_decay == pytest.approx(1e-4)


def test_model_file_round_trip(primary, tmp_path):
    model = model_from_file(primary)
    save_model(tmp_path / "m.pt", model, arch_name="tiny", arch=ARCH, num_classes=4, input_shape=[3, 8, 8])
    again = model_from_file(load_model_file(tmp_path / "m.pt"))
    assert same(tensors_of(again), tensors_of(model))


def test_corrupt_and_foreign_model_files_give_clear_errors(primary, tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, model_from_file(primary), arch_name="tiny", arch=ARCH, num_classes=4, input_shape=[3, 8, 8])
    with pytest.raises(CheckpointError, match="holds a 'tiny' model, but 'model_a' was asked for"):
        load_model_file(path, "model_a")
    with pytest.raises(CheckpointError, match="differ from the configured"):
        load_model_file(path, "tiny", {**ARCH, "depth": 10})
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=r"model\.pt: not a readable model file \(corrupt or truncated"):
        load_model_file(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="Delete it and rerun"):
        load_model_file(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gradual-transfer model file"):
        load_model_file(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model_file(tmp_path / "missing.pt")


def test_training_learns_the_toy_task(primary):
    model = model_from_file(primary)
    log_posteriors, targets = predict(model, toy_data(4, 64, 2), 32, CPU, OPTIONS)
    assert accuracy(log_posteriors, targets) > 0.5  # chance is 0.25
    assert math.isclose(log_posteriors.exp().sum(1).mean().item(), 1.0, rel_tol=1e-5)


def test_runtime_options_per_device_and_architecture(paper_config):
    runtime = paper_config["runtime"]
    cpu = RuntimeOptions.from_config(runtime, "model_b", CPU)
    assert cpu.channels_last == runtime["cpu"]["channels_last"] and not cpu.amp_bf16 and not cpu.prefetch
    cuda = torch.device("cuda")
    model_a = RuntimeOptions.from_config(runtime, "model_a", cuda)  # no override: runtime.cuda as is
    assert (model_a.amp_bf16, model_a.channels_last, model_a.prefetch) == (
        runtime["cuda"]["amp_bf16"], runtime["cuda"]["channels_last"], runtime["cuda"]["prefetch"])
    runtime["cuda_by_architecture"] = {"model_b": {"amp_bf16": not runtime["cuda"]["amp_bf16"]}}
    model_b = RuntimeOptions.from_config(runtime, "model_b", cuda)
    assert model_b.amp_bf16 != runtime["cuda"]["amp_bf16"] and model_b.prefetch == runtime["cuda"]["prefetch"]
    # data on the device and graphs: GPU knobs (absent keys: off), never on a CPU
    assert (model_a.resident_data_mb, model_a.cuda_graphs) == (runtime["cuda"]["resident_data_mb"],
                                                               runtime["cuda"]["cuda_graphs"])
    assert (cpu.resident_data_mb, cpu.cuda_graphs) == (0, False)
    runtime["cuda_by_architecture"] = {"model_b": {"cuda_graphs": True}}
    del runtime["cuda"]["resident_data_mb"], runtime["cuda"]["cuda_graphs"]
    from gradual_transfer.config import with_defaults

    runtime = with_defaults(paper_config)["runtime"]  # absent keys: the schema's defaults, off
    assert RuntimeOptions.from_config(runtime, "model_b", cuda).cuda_graphs
    assert (RuntimeOptions.from_config(runtime, "model_a", cuda).resident_data_mb,
            RuntimeOptions.from_config(runtime, "model_a", cuda).cuda_graphs) == (0, False)


def test_prefetched_batches_keep_order_and_content():
    source = toy_data(3, 50, seed=1)
    direct = list(source.batches(8, torch.Generator().manual_seed(5)))
    ahead = list(prefetched(source.batches(8, torch.Generator().manual_seed(5)), depth=2, pin=False))
    assert len(ahead) == len(direct)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ahead, direct))


def test_prefetched_raises_the_gatherers_error_and_stops_when_left_early():
    def failing():
        yield torch.zeros(1), torch.zeros(1)
        raise ValueError("bad batch in the gatherer")

    with pytest.raises(ValueError, match="bad batch in the gatherer"):
        list(prefetched(failing(), pin=False))

    produced = []

    def endless():
        while True:
            produced.append(1)
            yield torch.zeros(1), torch.zeros(1)

    before = threading.active_count()
    batches = prefetched(endless(), depth=2, pin=False)
    next(batches)
    batches.close()  # as a loop that breaks out does: the thread must stop, not block forever
    assert threading.active_count() == before and len(produced) <= 4


@pytest.mark.parametrize("arch,shape,lc", [(ARCH, (3, 8, 8), 3), (ARCH, (3, 8, 8), 7), (SPEECH_ARCH, (1, 5, 8), 2)])
def test_cached_frozen_groups_train_as_the_uncached_path(tmp_path, caplog, arch, shape, lc):
    from gradual_transfer.models import build_model

    train, val = toy_data(3, 90, 31, shape), toy_data(3, 30, 32, shape)
    settings = recipe(epochs=3, head_warmup_iterations=4)

    def trained(cache_mb: int, where: str):
        torch.manual_seed(1)
        model = build_model(arch, 3, shape).freeze(lc)
        result = fit(model, train, evaluator(val), settings, checkpoint_dir=tmp_path / where, fingerprint={},
                     device=CPU, options=RuntimeOptions(channels_last=False, frozen_cache_mb=cache_mb))
        return model, result

    with caplog.at_level("INFO", logger="gradual_transfer"):
        cached_model, cached = trained(64, "cached")
    assert f"cached the output of the {lc} frozen groups for 90 examples" in caplog.text
    plain_model, plain = trained(0, "plain")
    # the same batches, the same dropout draws: equal up to float rounding of batched convolutions
    assert [h["epoch"] for h in cached.history] == [h["epoch"] for h in plain.history]
    for a, b in zip(cached.history, plain.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    for (name, a), b in zip(tensors_of(cached_model).items(), tensors_of(plain_model).values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


def test_frozen_output_respects_its_memory_budget(caplog):
    from gradual_transfer.models import build_model
    from gradual_transfer.frozen_prefix import frozen_output

    model = build_model(ARCH, 3, (3, 8, 8)).freeze(1)
    source = toy_data(3, 1000, 5)
    assert frozen_output(model, source, 64, CPU, RuntimeOptions(frozen_cache_mb=0)) is None
    with caplog.at_level("INFO", logger="gradual_transfer"):
        assert frozen_output(model, source, 64, CPU, RuntimeOptions(frozen_cache_mb=1)) is None  # ~2 MB needed
    assert "not cached" in caplog.text
    cached = frozen_output(model, source, 64, CPU, RuntimeOptions(frozen_cache_mb=8))
    assert len(cached) == 1000
    x, _ = next(source.batches(1000, None))
    with torch.no_grad():
        model.eval()
        assert torch.allclose(cached.inputs, model.forward_groups(x, 0, 1), atol=1e-6)
        assert torch.equal(model(cached.inputs[:5], 1), model.head(model.body[1:](cached.inputs[:5])))
    nothing_frozen = build_model(ARCH, 3, (3, 8, 8))
    assert frozen_output(nothing_frozen, source, 64, CPU, RuntimeOptions(frozen_cache_mb=8)) is None


def allocation_peak(work):
    """(what `work` returned, the peak of tensor memory it held at once, in bytes): the profiler's
    record of every allocation and free by PyTorch's CPU allocator while `work` ran, summed in
    order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        returned = work()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return returned, peak


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_frozen_prefix_cache_is_filled_in_place(channels_last):
    """The cache is allocated once at its final size and each batch's output written into it:
    its peak is the cache and one batch, not twice the cache (chunks, then their concatenation)."""
    from gradual_transfer.models import build_model
    from gradual_transfer.frozen_prefix import frozen_output

    model = build_model(ARCH, 3, (3, 8, 8)).freeze(1)
    source = toy_data(3, 4000, 5)
    options = RuntimeOptions(channels_last=channels_last, frozen_cache_mb=64)
    cached, peak = allocation_peak(lambda: frozen_output(model, source, 64, CPU, options))
    size = cached.inputs.nbytes + cached.targets.nbytes
    assert size > 8e6 and peak < 1.1 * size, (peak, size)
    x, _ = next(source.batches(4000, None))
    with torch.no_grad():
        assert torch.allclose(cached.inputs, model.forward_groups(x, 0, 1), atol=1e-6)
    assert torch.equal(cached.targets, source.targets)
