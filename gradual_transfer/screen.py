"""The screen's jobs, computed (:mod:`gradual_transfer.plan.screen` plans them): what the
primaries alone predict about a study before its transfers are paid for, and what fine-tuning
changed once they are.

- :func:`run_estimates`: from the source primary's groups on a bounded sample of the target's
  training data (:mod:`gradual_transfer.representations`), at every swept l_c ≥ 1, LogME, the
  shrinkage H-score and a linear probe's validation error, and LEEP at l_c = L_H
  (:mod:`gradual_transfer.estimates`); per group, the linear CKA between the source and the
  target primaries (:mod:`gradual_transfer.similarity`).
- :func:`run_similarity`: per unit and l_c, the CKA per group between each transfer and the
  model it started from (``copy``: the source primary; ``reinit``: the source's first l_c groups
  and the random layers it drew, rebuilt from the job's seed).

Both run on the CPU: a sample is small, and the estimates are linear algebra.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

from gradual_transfer.data.kinds import DatasetKind
from gradual_transfer.screen_inputs import unit_inputs, unit_key

log = logging.getLogger(__name__)


def _examples(settings: dict, sources: dict, sample: Mapping) -> dict:
    """The train and validation samples of the target (``sample``: the kind of example, how
    many at most, the seed): images, frames (phone recognition: HMM states) or utterances
    (utterance classification, silence the last class)."""
    from gradual_transfer import representations

    size, seed = sample["size"], sample["seed"]
    read = {"image": lambda source: representations.image_examples(source, size, seed),
            "frame": lambda source: representations.frame_examples(source, size, seed),
            "utterance": lambda source: representations.utterance_examples(source, settings["classes"] - 1, size,
                                                                            seed)}[sample["example"]]
    return {split: read(sources[split]) for split in ("train", "validation")}


def _sources(kind: DatasetKind, settings: dict, data: Mapping[str, str], fold: int) -> dict:
    from gradual_transfer.tasks import for_kind

    return for_kind(kind).sources(kind, settings, data, fold)


def _load(path: str, arch: str, network: dict):
    from gradual_transfer.checkpoints import load_model_file, model_from_file

    return model_from_file(load_model_file(path, arch, network))


PROBE_METRICS = {"image": "top-1 error (%)", "frame": "HMM-state frame error (%)",
                 "utterance": "unweighted error of utterance decisions (%)"}


def run_estimates(params: Mapping, inputs: Mapping[str, str], output: str | Path, kind: DatasetKind) -> dict:
    """Compute an estimates job (:func:`gradual_transfer.plan.screen.estimate_params`; `kind`:
    the registry's kind of the target's dataset) and write it as JSON."""
    from gradual_transfer import estimates, representations, similarity
    from gradual_transfer.io import write_json

    started = time.perf_counter()
    screen, settings = params["screen"], params["settings"]
    units = []
    for index, (fold, source_fold) in enumerate(screen["units"]):
        data = unit_inputs(inputs, index)
        examples = _examples(settings, _sources(kind, settings, data, fold), params["sample"])
        example = params["sample"]["example"]
        source = _load(data["source"], screen["arch"], settings["network"])
        primary = _load(data["primary"], screen["arch"], settings["network"])
        *train, source_probabilities = representations.group_outputs(source, examples["train"], probabilities=True)
        validation = representations.group_outputs(source, examples["validation"])
        own = representations.group_outputs(primary, examples["train"])
        y, y_val = examples["train"].labels, examples["validation"].labels
        per_lc = {}
        for lc in screen["lcs"]:
            f = train[lc - 1]
            per_lc[str(lc)] = {
                "logme": estimates.logme(f, y),
                "h_score_shrinkage": estimates.shrinkage_h_score(f, y),
                "probe_error": estimates.linear_probe_error(f, y, validation[lc - 1], y_val, settings["classes"],
                                                            unweighted=example == "utterance"),
                "leep": (estimates.leep(source_probabilities, y, settings["classes"])
                         if lc == source.num_groups else None),
            }
        units.append({"fold": fold, "source_fold": source_fold, "example": example, "n_train": len(y),
                      "n_validation": len(y_val), "features": [f.shape[1] for f in train], "lc": per_lc,
                      "cka_primaries": [similarity.debiased_cka(a, b) for a, b in zip(train, own)],
                      "cka_primaries_plugin": [similarity.linear_cka(a, b) for a, b in zip(train, own)]})
        log.info("fold %d: %d training and %d validation %ss; estimates at l_c %s", fold, len(y), len(y_val),
                 example, screen["lcs"])
    result = {"screen": dict(screen), "groups": source.group_names, "probe_metric": PROBE_METRICS[example],
              "units": units, "cost": {"seconds": time.perf_counter() - started, "device": "cpu"}}
    write_json(output, result)
    return result


def run_similarity(params: Mapping, inputs: Mapping[str, str], output: str | Path, kind: DatasetKind) -> dict:
    """Compute a similarity job (:func:`gradual_transfer.plan.screen.similarity_params`) and
    write it as JSON."""
    from gradual_transfer import representations, similarity
    from gradual_transfer.checkpoints import load_model_file
    from gradual_transfer.io import write_json
    from gradual_transfer.transfer import transfer_model

    started = time.perf_counter()
    screen, settings = params["screen"], params["settings"]
    units = []
    for index, (fold, source_fold) in enumerate(screen["units"]):
        data = unit_inputs(inputs, index)
        examples = _examples(settings, _sources(kind, settings, data, fold), params["sample"])
        source_file = load_model_file(data["source"], screen["arch"], settings["network"])
        source = _load(data["source"], screen["arch"], settings["network"])
        start_copy = representations.group_outputs(source, examples["train"])
        per_lc = {}
        for lc in screen["lcs"]:
            if screen["family"] == "copy":
                start = start_copy
            else:  # the model the reinit transfer started from: drawn again from its seed
                start = representations.group_outputs(
                    transfer_model(source_file, screen["arch"], settings["network"], settings["classes"], lc,
                                   params["init_seed"], "reinit"), examples["train"])
            trained = representations.group_outputs(_load(inputs[unit_key("transfer", index, lc)], screen["arch"],
                                                          settings["network"]), examples["train"])
            per_lc[str(lc)] = [similarity.debiased_cka(a, b) for a, b in zip(start, trained)]
        units.append({"fold": fold, "source_fold": source_fold, "n": len(examples["train"]), "lc": per_lc})
    result = {"screen": dict(screen), "groups": source.group_names, "units": units,
              "cost": {"seconds": time.perf_counter() - started, "device": "cpu"}}
    write_json(output, result)
    return result
