"""Embedded Viterbi realignment of TIMIT's frame targets (``frame_targets: realigned``).

A model trained on the current targets scores every frame of the training and dev sets; each
utterance is then force-aligned through its own reference phones (:func:`gradual_transfer.hmm.align`,
each phone a 3-state left-to-right HMM, emissions = acoustic scale × (log posterior − log state
prior), transitions from the HMM estimated on the current targets, weighted by the self-loop and
transition scales as Kaldi weights them), and the alignment replaces the targets. The phone
boundaries are free, as Kaldi aligns from the transcript alone, or held within ± ``window``
frames of the hand-labelled ones. An utterance that cannot be aligned (fewer frames than three
per phone, or windows too tight) keeps its current targets and is counted;
more than :data:`MAX_NOT_ALIGNED` of a split stops the job.

The outputs are the feature file with new targets (Arrow, every other column unchanged) and a
Kaldi alignment archive of the same targets: per utterance an int32 vector of pdf-level state
ids (3p + k), what Kaldi's ``ali-to-pdf`` writes, not transition ids; ``frame_targets:
alignment`` reads it back. And a report: the scales, the share of frames whose state changed
and how far phone boundaries moved from the labelled ones.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from gradual_transfer import hmm
from gradual_transfer.checkpoints import load_model_file, model_from_file
from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter
from gradual_transfer.data.errors import DataError
from gradual_transfer.data.timit_labels import PhoneMap
from gradual_transfer.io import read_json, write_ark_scp, write_json
from gradual_transfer.tasks.speech import FrameSource
from gradual_transfer.devices import select_device
from gradual_transfer.recipe import RuntimeOptions
from gradual_transfer.steps import predict

log = logging.getLogger(__name__)


def phone_spans(targets: np.ndarray, phones: list[int]) -> list[tuple[int, int]]:
    """Frame span [first, end) of each phone of `phones` in a target sequence (state ids
    3p + k). A new phone starts where the phone changes or the state goes back; phones that
    got no frame (shorter than a frame shift) get an empty span at their place."""
    targets = np.asarray(targets, dtype=np.int64)
    phone, state = np.divmod(targets, hmm.STATES)
    starts = np.flatnonzero(np.concatenate([[True], (phone[1:] != phone[:-1]) | (state[1:] < state[:-1])]))
    ends = np.concatenate([starts[1:], [len(targets)]])
    spans, segment = [], 0
    for p in phones:
        if segment < len(starts) and phone[starts[segment]] == p:
            spans.append((int(starts[segment]), int(ends[segment])))
            segment += 1
        else:  # no frame of its own: at the boundary where the next segment starts
            at = int(starts[segment]) if segment < len(starts) else len(targets)
            spans.append((at, at))
    return spans


def boundary_shifts(labelled: list[tuple[int, int]], aligned: list[tuple[int, int]]) -> np.ndarray:
    """|aligned − labelled| start frame of every phone after the first that has frames in both."""
    return np.array([abs(a[0] - b[0]) for a, b in zip(labelled[1:], aligned[1:]) if b[1] > b[0]], dtype=np.int64)


# At most this share of a split's utterances may keep their current targets for want of an
# alignment (fewer frames than three per phone, or windows too tight); more stops the job:
# a model trained on them would train mostly on the targets it was meant to replace.
MAX_NOT_ALIGNED = 0.01


def check_aligned_share(report: dict, features: str | Path, window: int | None) -> None:
    """Refuse a realignment that left more than :data:`MAX_NOT_ALIGNED` of a split unaligned,
    with the counts and the setting to change."""
    kept, total = report["not_aligned"], report["utterances"]
    if kept <= MAX_NOT_ALIGNED * total:
        return
    how = (f"within ± {window} frames of their labelled phone boundaries" if window is not None
           else "through their reference phones (fewer than 3 frames per phone)")
    fix = (f"Widen tasks.asr.realign_window (now {window}; 3 aligns every demo utterance, null aligns freely)"
           if window is not None else "Set tasks.asr.frame_targets: thirds, or check the corpus's phone labels")
    raise DataError(f"{features}: {kept} of {total} utterances ({kept / total:.0%}) could not be aligned "
                    f"{how} and would keep their previous targets; at most {MAX_NOT_ALIGNED:.0%} may. {fix}.")


def realign_split(model, current: SpeechFeatures, labelled: SpeechFeatures, stats: dict, loop: hmm.PhoneLoop,
                  scales: dict, window: int | None, context: int, batch_size: int, device,
                  options: RuntimeOptions) -> tuple[list[np.ndarray], dict]:
    """New targets of every utterance of one split, and what changed. `scales` holds the
    ``acoustic_scale``, ``self_loop_scale`` and ``transition_scale`` of :func:`hmm.align`."""
    phone_map = PhoneMap.load()
    source = FrameSource(current, range(len(current)), stats, context)
    started = time.perf_counter()
    log_posteriors, _ = predict(model, source, batch_size, device, options)
    scoring = time.perf_counter() - started
    posteriors = source.split_by_utterance(log_posteriors.numpy().astype(np.float64))
    phones = [[phone_map.index48(p) for p in sequence] for sequence in current.column("phones")]
    if labelled.utt_ids != current.utt_ids:
        raise ValueError(f"{labelled.path} and {current.path} hold different utterances")
    spans = [phone_spans(labelled.targets(r), phones[r]) for r in range(len(current))]
    windows = None if window is None else [[(a - window, b + window) for a, b in s] for s in spans]
    started = time.perf_counter()
    paths = hmm.align(posteriors, phones, loop, scales["acoustic_scale"], windows,
                      self_loop_scale=scales["self_loop_scale"], transition_scale=scales["transition_scale"])
    aligning = time.perf_counter() - started
    targets, kept, changed, shifts = [], 0, 0, []
    for r, path in enumerate(paths):
        old = current.targets(r).astype(np.int64)
        if path is None:
            kept += 1
            path = old
        targets.append(path)
        changed += int((path != old).sum())
        if path is not old:
            shifts.append(boundary_shifts(spans[r], phone_spans(path, phones[r])))
    shifts = np.concatenate(shifts) if shifts else np.zeros(0, dtype=np.int64)
    frames = int(current.total_frames)
    report = {
        "utterances": len(current), "frames": frames, "not_aligned": kept,
        "changed_frames": changed / max(frames, 1),
        "boundary_shift_frames": {"mean": float(shifts.mean()) if len(shifts) else 0.0,
                                  "median": float(np.median(shifts)) if len(shifts) else 0.0,
                                  "within_1": float((shifts <= 1).mean()) if len(shifts) else 1.0,
                                  "within_2": float((shifts <= 2).mean()) if len(shifts) else 1.0},
        "seconds": {"scoring": scoring, "aligning": aligning},
        "aligned_frames_per_s": frames / max(aligning, 1e-9),
    }
    log.info("%s: %d utterances, %.1f %% of frames changed state, phone boundaries moved %.2f frames on "
             "average from the labelled ones, %d not aligned (kept); aligner %.0f frames/s", current.path,
             len(current), 100 * report["changed_frames"], report["boundary_shift_frames"]["mean"], kept,
             report["aligned_frames_per_s"])
    return targets, report


def write_with_targets(features: SpeechFeatures, targets: list[np.ndarray], out: str | Path) -> None:
    """A copy of a feature file with other targets (every other column unchanged)."""
    columns = {name: features.column(name) for name in features.schema.names if name not in ("feats", "targets")}
    with SpeechWriter(out, features.schema) as writer:
        for row in range(len(features)):
            writer.add({**{name: values[row] for name, values in columns.items()}, "feats": features.feats(row),
                        "targets": targets[row]})


def realign(*, model: str | Path, current: dict[str, str | Path], labelled: dict[str, str | Path],
            stats: str | Path, hmm_file: str | Path, outputs: dict[str, dict[str, str | Path]], report: str | Path,
            acoustic_scale: float, self_loop_scale: float, transition_scale: float, window: int | None,
            context: int, runtime: dict, batch_size: int = 4096) -> dict:
    """Realign each split of `current` (``train``, ``dev``) with `model`; `labelled` are the
    same splits with the hand-labelled (thirds) targets, for windows and boundary shifts;
    `outputs[split]` names its ``features`` (Arrow) and ``ali`` / ``ali_scp`` (Kaldi) files."""
    model_file = load_model_file(model)
    network = model_from_file(model_file)
    device = select_device()  # once for the job
    options = RuntimeOptions.from_config(runtime, model_file.get("arch_name", ""), device)
    data = read_json(hmm_file)
    data.pop("phones")
    loop = hmm.PhoneLoop.from_dict(data)
    statistics = read_json(stats)
    scales = {"acoustic_scale": acoustic_scale, "self_loop_scale": self_loop_scale,
              "transition_scale": transition_scale}
    reports = {}
    for split, out in outputs.items():
        features = SpeechFeatures(current[split])
        targets, reports[split] = realign_split(network, features, SpeechFeatures(labelled[split]), statistics, loop,
                                                scales, window, context, batch_size, device, options)
        check_aligned_share(reports[split], current[split], window)
        write_with_targets(features, targets, out["features"])
        write_ark_scp(((utt, t.astype(np.int32)) for utt, t in zip(features.utt_ids, targets)), out["ali"],
                      out["ali_scp"])
    write_json(report, {**scales, "window": window, **reports})
    return reports
