"""The speech tasks: frame batches from the feature files, SER scoring, ASR posteriors and
decoding.

- **ASR** (TIMIT): frame classifier over 144 HMM states; model selection by frame accuracy on
  the dev set (decoding every epoch would cost more than the epoch); after training, the
  log-posteriors of dev and test are written as Kaldi ark/scp, and a CPU job decodes them
  (:func:`decode_and_score`), tuning acoustic scale and insertion penalty on dev only.
- **SER** (IEMOCAP, one fold): frame classifier over 4 emotions + silence; an utterance's
  decision is the arg-max of its mean emotion posterior over its non-silence frames; UE =
  100 − UAR on the held-out speaker (test) and on the validation speakers, which also select
  the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gradual_transfer.data import iemocap
from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.timit import PhoneMap
from gradual_transfer.experiment import primary_model, secondary_model, train_and_save
from gradual_transfer.io import atomic_path, read_json, write_json
from gradual_transfer.metrics import phone_error_rate, unweighted_error
from gradual_transfer.models import GroupedNet
from gradual_transfer.train import Recipe, RuntimeOptions, predict, select_device

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
        order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
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


def frame_accuracy(log_posteriors: torch.Tensor, targets: torch.Tensor) -> float:
    return 100.0 * (log_posteriors.argmax(dim=1) == targets).double().mean().item()


def ser_decisions(source: FrameSource, log_posteriors: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(true emotion, decided emotion) per utterance: arg-max of the mean emotion posterior over
    non-silence frames (all frames if an utterance has none)."""
    posteriors = log_posteriors[:, : len(iemocap.EMOTIONS)].exp().numpy()
    true, decided = [], []
    for post, target in zip(source.split_by_utterance(posteriors), source.split_by_utterance(targets.numpy())):
        speech = target != iemocap.SILENCE
        emotion = np.bincount(target[speech], minlength=len(iemocap.EMOTIONS)).argmax() if speech.any() else None
        if emotion is None:
            continue  # an utterance labelled silent throughout carries no emotion to score
        true.append(int(emotion))
        decided.append(int(post[speech].mean(axis=0).argmax()))
    return np.array(true), np.array(decided)


def speech_evaluator(role: str, batch_size: int, options: RuntimeOptions) -> Callable[[GroupedNet, FrameSource], dict]:
    def evaluate(model: GroupedNet, source: FrameSource) -> dict:
        log_posteriors, targets = predict(model, source, batch_size, select_device(), options)
        metrics = {"frame_accuracy": frame_accuracy(log_posteriors, targets)}
        if role == "ser":
            true, decided = ser_decisions(source, log_posteriors, targets)
            metrics["ue"] = unweighted_error(true, decided, range(len(iemocap.EMOTIONS)))
            metrics["utterances"] = int(len(true))
            metrics["score"] = 100.0 - metrics["ue"]
        else:
            metrics["score"] = metrics["frame_accuracy"]
        return metrics
    return evaluate


def speech_sources(role: str, features_dir: str | Path, fold: int, context: int,
                   validation_speakers: list[str] | None = None) -> dict[str, FrameSource]:
    features_dir = Path(features_dir)
    if role == "asr":
        stats = read_json(features_dir / "stats" / "train.json")
        files = {split: SpeechFeatures(features_dir / f"{split}.arrow") for split in ("train", "dev", "test")}
        return {"train": FrameSource(files["train"], range(len(files["train"])), stats, context),
                "validation": FrameSource(files["dev"], range(len(files["dev"])), stats, context),
                "test": FrameSource(files["test"], range(len(files["test"])), stats, context)}
    stats = read_json(features_dir / "stats" / f"fold{fold}.json")
    layout = iemocap.folds(validation_speakers or [])[fold]
    features = SpeechFeatures(features_dir / "all.arrow")
    rows = {part: [r for r in range(len(features)) if features.speakers[r] in speakers] for part, speakers in layout.items()}
    return {split: FrameSource(features, rows[split], stats, context) for split in ("train", "validation", "test")}


def write_posteriors(model: GroupedNet, source: FrameSource, ark: str | Path, scp: str | Path, batch_size: int,
                     options: RuntimeOptions) -> None:
    """Frame log-posteriors of every utterance as a Kaldi archive + script file (float32)."""
    import kaldiio

    log_posteriors, _ = predict(model, source, batch_size, select_device(), options)
    utt_ids = [source.features.utt_ids[r] for r in source.rows]
    with atomic_path(ark) as tmp_ark, atomic_path(scp) as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for utt, post in zip(utt_ids, source.split_by_utterance(log_posteriors.numpy())):
                writer(utt, np.ascontiguousarray(post, dtype=np.float32))
        # the script file names the temporary archive: point it at the final one
        Path(tmp_scp).write_text(Path(tmp_scp).read_text().replace(str(tmp_ark), str(ark)))


def run_speech_job(*, role: str, features_dir: str | Path, fold: int, arch_name: str, arch: dict, num_classes: int,
                   recipe_entry: dict, context: int, out_model: str | Path, out_metrics: str | Path,
                   fingerprint: dict, runtime: dict, posteriors: dict[str, tuple[str, str]] | None = None,
                   validation_speakers: list[str] | None = None, source_model: str | Path | None = None,
                   lc: int = 0, meta: dict | None = None) -> dict:
    """Train one speech model (primary, or a transfer from `source_model`), score it, and for
    ASR write dev/test posteriors (`posteriors`: split → (ark, scp))."""
    recipe = Recipe.from_config(recipe_entry)
    options = RuntimeOptions.from_config(runtime, arch_name, select_device())
    sources = speech_sources(role, features_dir, fold, context, validation_speakers)
    shape = sources["train"].input_shape
    if source_model is None:
        model = primary_model(arch, num_classes, shape, recipe.seed)
    else:
        model = secondary_model(source_model, arch_name, arch, num_classes, lc, recipe.seed)
    batch = max(recipe.batch_size, 1024)
    metrics = train_and_save(model, train=sources["train"], validation=sources["validation"], test=sources["test"],
                             evaluate=speech_evaluator(role, batch, options), recipe=recipe, arch_name=arch_name,
                             arch=arch, num_classes=num_classes, input_shape=shape, out_model=out_model,
                             out_metrics=out_metrics, fingerprint=fingerprint, options=options, meta=meta or {})
    for split, (ark, scp) in (posteriors or {}).items():
        write_posteriors(model, sources[split], ark, scp, batch, options)
    return metrics


# --- HMM decoding ----------------------------------------------------------------------------

def estimate_hmm(train_features: str | Path, out: str | Path) -> None:
    """State priors, transitions and the phone bigram from the TIMIT training targets."""
    from gradual_transfer import hmm

    features = SpeechFeatures(train_features)
    phone_map = PhoneMap.load()
    targets = [features.targets(r) for r in range(len(features))]
    phones = [[phone_map.index48(p) for p in seq] for seq in features.column("phones")]
    loop = hmm.estimate(targets, phones, len(phone_map.phones48))
    write_json(out, {"phones": list(phone_map.phones48), **loop.to_dict()})


def _read_posteriors(scp: str | Path) -> dict[str, np.ndarray]:
    import kaldiio

    return {utt: np.asarray(mat) for utt, mat in kaldiio.load_scp(str(scp)).items()}


def _write_text(path: Path, sequences: dict[str, list[str]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{utt} {' '.join(seq)}\n" for utt, seq in sorted(sequences.items())))


def decode_and_score(*, hmm_file: str | Path, posteriors: dict[str, str | Path], references: dict[str, str | Path],
                     acoustic_scales: list[float], insertion_penalties: list[float], out_dir: str | Path,
                     meta: dict) -> dict:
    """Tune acoustic scale and insertion penalty on dev, decode dev and test with the chosen
    pair, write Kaldi-style ``hyp.txt``/``ref.txt`` (39-phone set, as scored) and PER files.

    `posteriors` and `references` map ``dev``/``test`` to a posterior scp and a feature file
    (whose ``phones`` column holds the 48-phone references). Two baselines are reported beside
    the result: the same decoder without the bigram (uniform phone loop) and a chance decoder
    (uniform posteriors)."""
    from gradual_transfer import hmm

    data = read_json(hmm_file)
    phones = data.pop("phones")
    loop = hmm.PhoneLoop.from_dict(data)
    fold = PhoneMap.load().to39
    out_dir = Path(out_dir)
    refs, posts = {}, {}
    for split in ("dev", "test"):
        features = SpeechFeatures(references[split])
        refs[split] = dict(zip(features.utt_ids, features.column("phones")))
        posts[split] = _read_posteriors(posteriors[split])

    def run(split: str, model: "hmm.PhoneLoop", scale: float, penalty: float, uniform: bool = False):
        """PER, edit counts and hypotheses of one split decoded with one setting."""
        utts = sorted(refs[split])
        matrices = [posts[split][u] for u in utts]
        if uniform:
            matrices = [np.full_like(m, -np.log(m.shape[1])) for m in matrices]
        decoded = hmm.decode(matrices, model, scale, penalty)
        hyps = {u: [phones[i] for i in seq] for u, seq in zip(utts, decoded)}
        return (*phone_error_rate(refs[split], hyps, fold), hyps)

    def tune(model: "hmm.PhoneLoop", uniform: bool = False) -> tuple[float, float, float]:
        grid = [(run("dev", model, a, p, uniform)[0], a, p) for a in acoustic_scales for p in insertion_penalties]
        return min(grid)  # lowest dev PER; ties resolved towards the smaller scale and penalty

    dev_per, scale, penalty = tune(loop)
    log.info("tuned on dev: acoustic scale %g, insertion penalty %g → dev PER %.2f", scale, penalty, dev_per)
    result = {**meta, "acoustic_scale": scale, "insertion_penalty": penalty, "validation": {}, "test": {}}
    for split, key in (("dev", "validation"), ("test", "test")):
        per, counts, hyps = run(split, loop, scale, penalty)
        split_dir = out_dir / split
        _write_text(split_dir / "hyp.txt", {u: [fold.get(p, p) for p in h] for u, h in hyps.items()})
        _write_text(split_dir / "ref.txt", {u: [fold.get(p, p) for p in r] for u, r in refs[split].items()})
        scores = {"per": per, "substitutions": counts.substitutions, "deletions": counts.deletions,
                  "insertions": counts.insertions, "reference_phones": counts.reference_length}
        write_json(split_dir / "per.json", {**scores, "acoustic_scale": scale, "insertion_penalty": penalty})
        result[key] = scores
    _, a0, p0 = tune(loop.without_bigram())
    result["test"]["per_without_bigram"] = run("test", loop.without_bigram(), a0, p0)[0]
    _, a1, p1 = tune(loop, uniform=True)
    result["test"]["per_chance"] = run("test", loop, a1, p1, uniform=True)[0]
    log.info("test PER %.2f; without the bigram %.2f; chance (uniform posteriors) %.2f", result["test"]["per"],
             result["test"]["per_without_bigram"], result["test"]["per_chance"])
    write_json(out_dir / "metrics.json", result)
    return result
