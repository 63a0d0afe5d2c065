"""Hybrid ConvNet-HMM decoding of TIMIT: the HMM and phone bigram estimated from the training
targets, and decoding of a model's dev/test posteriors with :mod:`gradual_transfer.hmm`,
tuned on dev, scored as PER on the 39-phone set. A tuned setting at an edge of its grid is
logged as a warning and recorded (``tuned_at_grid_edge``): the dev optimum may lie beyond it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gradual_transfer import hmm
from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.timit_labels import PhoneMap
from gradual_transfer.io import read_json, write_json, write_text
from gradual_transfer.metrics import align, counts_of, per_speaker, phone_error_rate, sclite_listing

log = logging.getLogger(__name__)


def estimate_hmm(train_features: str | Path, out: str | Path) -> None:
    """State priors, transitions and the phone bigram from the TIMIT training targets."""
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
    write_text(path, "".join(f"{utt} {' '.join(seq)}\n" for utt, seq in sorted(sequences.items())))


def grid_edges(chosen: dict[str, float], grids: dict[str, list[float]]) -> dict[str, str]:
    """Which tuned settings lie at an edge of their grid: ``{name: "smallest" | "largest"}`` for
    each setting whose grid has more than one value and whose chosen value is its smallest or
    largest (a single-valued grid is a fixed setting, not a search)."""
    edges = {}
    for name, value in chosen.items():
        grid = sorted(set(grids[name]))
        if len(grid) > 1 and value in (grid[0], grid[-1]):
            edges[name] = "smallest" if value == grid[0] else "largest"
    return edges


def decode_and_score(*, hmm_file: str | Path, posteriors: dict[str, str | Path], references: dict[str, str | Path],
                     acoustic_scales: list[float], insertion_penalties: list[float], out_dir: str | Path,
                     meta: dict, self_loop_scale: float = 1.0) -> dict:
    """Tune acoustic scale and insertion penalty on dev, decode dev and test with the chosen
    pair, write Kaldi-style ``hyp.txt``/``ref.txt`` (39-phone set, as scored) and PER files:
    ``per.json`` (corpus totals), ``per_speaker.tsv`` and the sclite-style ``align.txt``. The
    HMM's transitions are weighted by `self_loop_scale` (Kaldi's graphs: 0.1).

    `posteriors` and `references` map ``dev``/``test`` to a posterior scp and a feature file
    (whose ``phones`` column holds the 48-phone references). Two baselines are reported beside
    the result: the same decoder without the bigram (uniform phone loop) and a chance decoder
    (uniform posteriors)."""
    data = read_json(hmm_file)
    phones = data.pop("phones")
    loop = hmm.PhoneLoop.from_dict(data)
    fold = PhoneMap.load().to39
    out_dir = Path(out_dir)
    refs, posts, speakers = {}, {}, {}
    for split in ("dev", "test"):
        features = SpeechFeatures(references[split])
        refs[split] = dict(zip(features.utt_ids, features.column("phones")))
        speakers[split] = dict(zip(features.utt_ids, features.speakers.tolist()))
        posts[split] = _read_posteriors(posteriors[split])

    def run(split: str, model: "hmm.PhoneLoop", scale: float, penalty: float, uniform: bool = False):
        """PER, edit counts and hypotheses of one split decoded with one setting."""
        utts = sorted(refs[split])
        matrices = [posts[split][u] for u in utts]
        if uniform:
            matrices = [np.full_like(m, -np.log(m.shape[1])) for m in matrices]
        decoded = hmm.decode(matrices, model, scale, penalty, self_loop_scale=self_loop_scale)
        hyps = {u: [phones[i] for i in seq] for u, seq in zip(utts, decoded)}
        return (*phone_error_rate(refs[split], hyps, fold), hyps)

    def tune(model: "hmm.PhoneLoop", uniform: bool = False) -> tuple[float, float, float]:
        grid = [(run("dev", model, a, p, uniform)[0], a, p) for a in acoustic_scales for p in insertion_penalties]
        return min(grid)  # lowest dev PER; ties resolved towards the smaller scale and penalty

    dev_per, scale, penalty = tune(loop)
    log.info("tuned on dev: acoustic scale %g, insertion penalty %g → dev PER %.2f", scale, penalty, dev_per)
    edges = grid_edges({"acoustic_scale": scale, "insertion_penalty": penalty},
                       {"acoustic_scale": acoustic_scales, "insertion_penalty": insertion_penalties})
    for name, edge in edges.items():
        log.warning("the tuned %s (%g) is the %s value of its grid (tasks.<asr>.decode.%s): the dev optimum may lie "
                    "beyond the grid; widen it there", name, scale if name == "acoustic_scale" else penalty, edge,
                    "acoustic_scales" if name == "acoustic_scale" else "insertion_penalties")
    result = {**meta, "acoustic_scale": scale, "insertion_penalty": penalty, "self_loop_scale": self_loop_scale,
              "tuned_at_grid_edge": edges, "validation": {}, "test": {}}
    for split, key in (("dev", "validation"), ("test", "test")):
        per, counts, hyps = run(split, loop, scale, penalty)
        split_dir = out_dir / split
        _write_text(split_dir / "hyp.txt", {u: [fold.get(p, p) for p in h] for u, h in hyps.items()})
        _write_text(split_dir / "ref.txt", {u: [fold.get(p, p) for p in r] for u, r in refs[split].items()})
        scores = {"per": per, "substitutions": counts.substitutions, "deletions": counts.deletions,
                  "insertions": counts.insertions, "reference_phones": counts.reference_length}
        write_json(split_dir / "per.json", {**scores, "acoustic_scale": scale, "insertion_penalty": penalty})
        write_scoring_details(split_dir, refs[split], hyps, speakers[split], fold)
        result[key] = scores
    _, a0, p0 = tune(loop.without_bigram())
    result["test"]["per_without_bigram"] = run("test", loop.without_bigram(), a0, p0)[0]
    _, a1, p1 = tune(loop, uniform=True)
    result["test"]["per_chance"] = run("test", loop, a1, p1, uniform=True)[0]
    log.info("test PER %.2f; without the bigram %.2f; chance (uniform posteriors) %.2f", result["test"]["per"],
             result["test"]["per_without_bigram"], result["test"]["per_chance"])
    write_json(out_dir / "metrics.json", result)
    return result


def write_scoring_details(split_dir: Path, refs: dict[str, list[str]], hyps: dict[str, list[str]],
                          speakers: dict[str, str], fold: dict[str, str]) -> None:
    """``per_speaker.tsv`` (speaker, utterances, reference length, S, D, I, errors, PER; the
    last row ``all``) and ``align.txt`` (every utterance's REF/HYP alignment, sclite style),
    both on the scored 39-phone set."""
    alignments = {u: align([fold.get(p, p) for p in refs[u]], [fold.get(p, p) for p in hyps[u]]) for u in sorted(refs)}
    rows = per_speaker({u: counts_of(pairs) for u, pairs in alignments.items()}, speakers)
    header = list(rows[0])
    lines = ["\t".join(header)] + ["\t".join(f"{row[k]:.2f}" if k == "per" else str(row[k]) for k in header)
                                   for row in rows]
    write_text(split_dir / "per_speaker.tsv", "\n".join(lines) + "\n")
    write_text(split_dir / "align.txt", "".join(sclite_listing(u, speakers[u], pairs) for u, pairs in alignments.items()))
