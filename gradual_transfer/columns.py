"""What each column of the run's tables holds, said once: :data:`DESCRIPTIONS`, one sentence per
column name (a name means the same in every table that has it). The table pages show it as each
header's tooltip and in their column list; the README's table of columns is
:func:`columns_markdown`, checked against it by the tests.

Each table's page first shows its key columns (:data:`KEY_COLUMNS`: identifiers and findings),
the rest one click away, and keeps its identifiers (:data:`IDENTIFIERS`, the columns that say
which model or setting a row is) in view while the page scrolls sideways."""

from __future__ import annotations

from gradual_transfer.agreement import AGREEMENT_COLUMNS, ESTIMATE_COLUMNS, SIMILARITY_COLUMNS
from gradual_transfer.statistics import ALPHA, MIN_UNITS_FOR_INTERVAL, MIN_UNITS_FOR_TEST, UNDERTRAINED_MARGIN
from gradual_transfer.tables import (COLUMNS, DECOMPOSITION, DECOMPOSITION_MEANING, SETTING, SUMMARY_COLUMNS,
                                     TRANSFERABILITY_COLUMNS, TRANSFERABILITY_KEYS)

# The columns that name a row's model or setting, by table (the name of its TSV).
IDENTIFIERS = {
    "results": [c for c in COLUMNS if c not in ("value", "primary_value", "control_value", "decode_at_grid_edge")],
    "summary": SETTING,
    "transferability": TRANSFERABILITY_KEYS,
    "cost": ["experiment", "arch", "kind", "device_name"],
    "per_speaker": ["arch", "seed", "split", "speaker"],
    "estimates": ["experiment", "arch", "source", "target", "seed", "fold", "lc"],
    "estimate_agreement": ["experiment", "arch", "upper_groups", "scope", "source", "target", "lc", "estimate"],
    "similarity": ["experiment", "arch", "comparison", "upper_groups", "source", "target", "seed", "fold", "lc",
                   "group_index"],
}
IDENTIFIERS["similarity_primaries"] = IDENTIFIERS["similarity"]

# The columns each page shows before any click, in the table's order: the identifiers with the
# findings. The transferability page leaves out ``experiment`` and ``metric`` (its architecture
# and target imply them) so that its findings fit beside the identifiers in a report 1,400 px
# wide; the part beyond the control of a family that did not run is left out too.
KEY_COLUMNS = {
    "results": IDENTIFIERS["results"] + ["value", "primary_value", "control_value"],
    "summary": SETTING + ["n_units", "mean", "ci95"],
    "transferability": [c for c in TRANSFERABILITY_KEYS if c not in ("experiment", "metric")]
    + ["n_units", "gap", "normalised_gap", "gap_p", *(rest for _, rest in DECOMPOSITION.values()), "onset_lc",
       "diagnostic"],
    "cost": IDENTIFIERS["cost"] + ["jobs", "device_hours", "mean_mfu", "max_peak_memory_mb"],
    "per_speaker": IDENTIFIERS["per_speaker"] + ["utterances", "errors", "per"],
    "estimates": ["arch", "source", "target", "fold", "lc", "n_train", "logme", "h_score_shrinkage", "probe_error",
                  "leep", "sample_note"],
    "estimate_agreement": ["arch", "upper_groups", "scope", "source", "target", "lc", "estimate", "tau", "p_value",
                           "n_points"],
    "similarity": ["arch", "comparison", "upper_groups", "source", "target", "fold", "lc", "group", "frozen",
                   "cka_debiased"],
}
KEY_COLUMNS["similarity_primaries"] = KEY_COLUMNS["similarity"]


def _family_columns() -> dict[str, str]:
    """The columns of the gap's two parts at the self-transfer control, per family."""
    described = {}
    for family, (control_part, rest) in DECOMPOSITION.items():
        control_meaning, rest_meaning = DECOMPOSITION_MEANING[family]
        described[control_part] = (f"``{family}`` rows with a control: the control's gap to the target's primary "
                                   f"(control error − primary error), mean over units: {control_meaning}.")
        described[rest] = (f"``{family}`` transfer rows: transfer error − control error, run by run, mean over "
                           f"units: {rest_meaning}.")
        described[f"{rest}_hl"] = (f"The Hodges–Lehmann estimate of ``{rest}`` (the median of the Walsh averages): "
                                   "the location the signed-rank test tests.")
        described[f"{rest}_ci95"] = f"Half-width of the 95 % Student t interval of ``{rest}`` over units."
        described[f"{rest}_p"] = (f"The exact two-sided Wilcoxon signed-rank p-value of ``{rest}`` over units, "
                                  f"on the test split; none from fewer than {MIN_UNITS_FOR_TEST} non-zero "
                                  "differences.")
        described[f"{rest}_p_holm"] = f"``{rest}_p`` Holm-adjusted over the l_c of the row's curve."
        described[f"{rest}_p_fixed_sequence"] = (f"``{rest}_p`` adjusted by the fixed sequence from the deepest l_c: "
                                                 f"below {ALPHA} where ``{rest}`` is above zero at this l_c and every "
                                                 "deeper one.")
    return described


DESCRIPTIONS: dict[str, str] = {
    # who the row is
    "experiment": "The experiment (``images``, ``speech`` or one of your own; ``all`` on the cost table's total row).",
    "arch": "The architecture, by its name in the config.",
    "kind": ("``primary`` (trained on its task), ``transfer`` (from a source task's primary model into the target) "
             "or ``control`` (the self-transfer control: the target's own primary model transferred to the target "
             "in the same way)."),
    "upper_groups": ("The family: how the layer groups above l_c start. ``copy`` (the paper: copied from the source "
                     "and fine-tuned with the target's ``finetune`` recipe) or ``reinit`` (Yosinski et al. 2014: "
                     "re-initialised and trained with its ``training`` recipe); empty for primary models."),
    "source": "The task whose primary model the row's model starts from (the target itself for primaries and controls).",
    "target": "The task the model is trained and scored on.",
    "seed": "The run's seed (``experiments.<exp>.seeds``).",
    "fold": ("The fold: the leave-one-speaker-out fold of an utterance-classification target (SER), the SER "
             "source fold of a SER → ASR transfer; 0 for a task with one fixed split."),
    "lc": "l_c: how many leading layer groups are copied from the source and held constant; empty for primaries.",
    "split": ("The split scored: ``validation`` (it chose the model, by early stopping) or ``test``; in the "
              "per-speaker table, the phone-recognition corpus's ``dev`` or core ``test`` set."),
    "metric": ("``accuracy`` (top-1, %), ``per`` (phone error rate, %) or ``ue`` (unweighted error: 100 − the "
               "unweighted accuracy over utterances, %)."),
    # results
    "value": "The model's score on the split, in the metric's unit.",
    "primary_value": "The target's own primary model's score, of the same seed, fold and split.",
    "control_value": ("Transfers only: the score of the target's self-transfer control of the same family, l_c, "
                      "seed and fold."),
    "decode_at_grid_edge": ("Models decoded by the phone-recognition task: ``none`` where the acoustic scale and insertion penalty tuned "
                            "on dev lie inside their grids, else the setting at an edge (its optimum may lie "
                            "beyond: widen ``tasks.asr.decode``)."),
    # over units of replication
    "unit": ("The unit of replication: ``fold`` where the runs carry folds (the seeds of a fold averaged first, "
             "as they share its test speaker), else ``seed``."),
    "n_units": "How many units of replication the row's statistics rest on.",
    "n_runs": "How many runs (seeds × folds) its units average.",
    "mean": "The mean of the metric over units.",
    "std": "The standard deviation over units (n − 1 in the denominator).",
    "ci95": (f"Half-width of the 95 % Student t interval of the mean (n − 1 degrees of freedom); empty for one "
             f"unit. Figures draw it only from {MIN_UNITS_FOR_INTERVAL} units."),
    "interval_note": (f"Why the interval says little (fewer than {MIN_UNITS_FOR_INTERVAL} units, or no spread); "
                      "empty for an ordinary one."),
    "primary_mean": "The mean over the same units of the target's primary models.",
    # transferability
    "budget": ("The recipe the row's models trained with: ``finetune`` (copy) or ``training`` (reinit), its "
               "epochs and batch size, and the head warm-up."),
    "relative_depth": "l_c / L_H: the share of the network's layer groups held constant.",
    "error": "The mean error of the row's models over units (100 − accuracy for images).",
    "primary_error": "The mean error of the target's primary models over the same units.",
    "trivial_error": ("The error of a predictor that learnt nothing: 100 (1 − 1/K) for top-1, 100 (1 − 1/E) for "
                      "unweighted error (75 for 4 emotions), 100 for PER (the empty hypothesis)."),
    "gap": "error − primary_error, run by run, mean over units: what the row's model gives up (positive: worse).",
    "gap_hl": ("The Hodges–Lehmann estimate of the gap (the median of the Walsh averages): the location the "
               "signed-rank test tests."),
    "gap_std": "The standard deviation of the gap over units.",
    "gap_ci95": "Half-width of the 95 % Student t interval of the gap over units.",
    "gap_p": (f"The exact two-sided Wilcoxon signed-rank p-value of the gap over units, on the test split; none "
              f"from fewer than {MIN_UNITS_FOR_TEST} non-zero differences (``test_note`` says why)."),
    "gap_p_holm": "``gap_p`` Holm-adjusted over the l_c of the row's curve: for reading one l_c on its own.",
    "gap_p_fixed_sequence": (f"``gap_p`` adjusted by the fixed sequence from the deepest l_c: below {ALPHA} where "
                             "the gap is above zero at this l_c and every deeper one."),
    "normalised_gap": ("gap / (trivial_error − primary_error): the share of the target primary's headroom over a "
                       "trivial predictor that the row's model loses; empty without headroom."),
    **_family_columns(),
    "diagnostic": ("``primary under-trained`` where the target's self-transfer control has less error than its "
                   f"primary beyond its 95 % interval (below {MIN_UNITS_FOR_INTERVAL} units: in every unit, by more "
                   f"than {UNDERTRAINED_MARGIN:.0%} of the headroom), with the numbers; its transfers point to it."),
    "test_note": "Why a test has no p-value (too few non-zero differences, or the validation split).",
    "onset_lc": (f"The shallowest l_c from which ``onset_measure`` is above zero at it and every deeper swept l_c, "
                 f"by the fixed-sequence procedure at {ALPHA} (test split only); empty otherwise."),
    "onset_measure": ("What the onset tests: the part beyond the control (``specificity`` for reinit, "
                      "``source_features_cost`` for copy), or the gap where there is no control."),
    "onset_procedure": "The onset's procedure and the l_c it starts from.",
    "onset_reason": "Why there is no onset: the deepest l_c that fails, and why.",
    # cost
    "device_name": "The device the jobs trained on (``cpu``, or the GPU's name).",
    "jobs": "How many training jobs the row adds up.",
    "jobs_without_cost": "Of those, how many record no cost in their ``metrics.json``.",
    "device_hours": "Their training time (head warm-up and epochs, evaluation included), summed, in hours.",
    "mean_examples_per_s": "Their mean throughput: training examples (images, or speech frames) per second.",
    "mean_mfu": ("Their mean model-FLOPs utilisation: a training step's FLOPs times steps per second over the "
                 "device's dense tensor-core peak; empty on CPUs."),
    "max_peak_memory_mb": "Their largest peak memory in MB (CUDA memory allocated, or resident memory on a CPU).",
    # per-speaker PER
    "speaker": "The test speaker of the phone-recognition corpus, or ``all`` for the corpus total.",
    "utterances": "How many of the speaker's utterances were decoded.",
    "reference_length": "How many phones their reference transcriptions hold (39-phone set).",
    "substitutions": "Reference phones decoded as another phone.",
    "deletions": "Reference phones missing from the decode.",
    "insertions": "Decoded phones with no reference phone.",
    "errors": "substitutions + deletions + insertions.",
    "per": "The phone error rate: errors / reference_length × 100 (%).",
    # the screen: estimates and similarity
    "example": "What one example of the screen's sample is: an ``image``, a ``frame`` (an HMM state) or an ``utterance``.",
    "source_fold": "The fold of the source primary the unit's estimates read (its SER fold; 0 without folds).",
    "n_train": "Examples of the target's training split the estimate is read on (at most ``screen.sample_size``).",
    "n_validation": "Examples of the target's validation split the linear probe is scored on.",
    "features": "The feature dimension at this l_c: the pooled output of layer group l_c.",
    "logme": ("LogME (You et al., ICML 2021): the maximum log evidence per example of a Bayesian linear regression "
              "of each class's one-hot column on the features, averaged over the classes; larger is better."),
    "h_score_shrinkage": ("The H-score (Bao et al., ICIP 2019) with cov(f) shrunk by the Ledoit–Wolf intensity "
                          "(Ibrahim et al., ICLR 2022): tr(cov_α(f)⁻¹ (1 − α) cov(E[f | y])); larger is better."),
    "probe_error": ("A linear probe's error (%) on the validation sample: multinomial logistic regression fitted "
                    "to convergence on the training sample (``probe_metric``); smaller is better."),
    "probe_metric": "What the probe's error counts: top-1, HMM-state frames, or utterance decisions (unweighted).",
    "leep": ("LEEP (Nguyen et al., ICML 2020) from the source network's own softmax: only at l_c = L_H; larger is "
             "better."),
    "sample_note": "Where the sample has no more examples than features: LogME and the H-score then interpolate.",
    "scope": ("What the τ ranks: ``curve`` (one pair's l_c), ``lc`` (the pairs at one l_c) or ``all`` (every "
              "(pair, l_c) of an architecture and family)."),
    "estimate": "The estimate ranked: ``logme``, ``h_score_shrinkage``, ``probe_error`` or ``leep``.",
    "tau": ("Kendall's τ-b between the estimate and the measured gap (test split, mean over units; across "
            "targets the normalised gap), "
            "oriented so that τ > 0 means the estimate ranks the points as measured."),
    "p_value": "τ's two-sided p-value; empty from fewer than 3 points.",
    "n_points": "How many (pair, l_c) points τ ranks.",
    "p_method": "``exact`` (no ties) or ``asymptotic`` (scipy's normal approximation).",
    "comparison": ("``source vs target primary`` (the two tasks' own models) or ``transfer vs its start`` (a "
                   "transfer against the model it started from)."),
    "group_index": "The layer group, counted from 1 (group l_c is the last one held constant at l_c).",
    "group": "The layer group's name in the architecture.",
    "frozen": "Whether the group was held constant (group_index ≤ l_c): its CKA is 1 by construction.",
    "cka_debiased": "Linear CKA from the unbiased HSIC estimator (Song et al. 2012): near 0 for unrelated, 1 for equal.",
    "cka_plugin": ("Linear CKA from the plug-in (biased) HSIC (Kornblith et al. 2019): biased upwards on small "
                   "samples; primaries only."),
    "n": "Examples of the sample the CKA is read on.",
}

# The columns of every table, by the name of its TSV (the cost table's are cost.py's, which imports
# torch; the per-speaker table's are sclite's, after the decode's labels): the README's table
# says which tables have a column, and the tests check these against the tables a run writes.
TABLE_COLUMNS = {
    "results": COLUMNS,
    "summary": SUMMARY_COLUMNS,
    "transferability": TRANSFERABILITY_COLUMNS,
    "cost": IDENTIFIERS["cost"] + ["jobs", "jobs_without_cost", "device_hours", "mean_examples_per_s", "mean_mfu",
                                   "max_peak_memory_mb"],
    "per_speaker": IDENTIFIERS["per_speaker"] + ["utterances", "reference_length", "substitutions", "deletions",
                                                 "insertions", "errors", "per"],
    "estimates": ESTIMATE_COLUMNS,
    "estimate_agreement": AGREEMENT_COLUMNS,
    "similarity": SIMILARITY_COLUMNS,
    "similarity_primaries": SIMILARITY_COLUMNS,
}


def columns_markdown() -> str:
    """The README's table of columns: each column, the tables that have it, what it holds."""
    lines = ["| column | tables | what it holds |", "|---|---|---|"]
    for column, description in DESCRIPTIONS.items():
        tables = ", ".join(name for name, columns in TABLE_COLUMNS.items() if column in columns)
        lines.append(f"| `{column}` | {tables} | {description.replace('``', '`')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(columns_markdown(), end="")
