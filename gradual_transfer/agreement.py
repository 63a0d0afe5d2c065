"""The screen's tables: every estimate beside what was measured, and how far they agree.

- :func:`estimates_table` — one row per (experiment, arch, source, target, seed, unit, l_c) of
  the estimates jobs (:mod:`gradual_transfer.screen`): LogME, shrinkage H-score, the probe's
  error, LEEP (l_c = L_H only), the sample (kind of example, n, feature dimension), at full
  precision.
- :func:`agreement_table` — Kendall's τ between each estimate (averaged over units) and the
  measured gap of the transfers on the test split (the transferability table's mean over units;
  within a curve the gap, across targets the **normalised gap**, the share of the target
  primary's headroom a transfer loses, since only it compares targets), oriented so that
  τ > 0 means the estimate ranks the points as the measurement does (a larger LogME, H-score or
  LEEP, or a smaller probe error, predicting a smaller gap). Three scopes per architecture and
  family: each curve over its l_c (``curve``), each l_c over the pairs (``lc``), and every
  (pair, l_c) point (``all``). With n points τ's exact p needs n ≥ 4 to fall below 0.05 only if
  every pair of points agrees; most curves have 2 to 6 points: read τ with its n.
- :func:`similarity_table` — the debiased linear CKA per layer group: between the source and the
  target primaries (``primaries``), and between each transfer and the model it started from
  (``transfer``; 1 for every frozen group, by construction).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.estimates import rank_agreement
from gradual_transfer.io import read_json

ESTIMATES = {  # name → whether larger predicts a better transfer
    "logme": True, "h_score_shrinkage": True, "probe_error": False, "leep": True,
}

ESTIMATE_COLUMNS = ["experiment", "arch", "source", "target", "seed", "fold", "source_fold", "lc",
                    "relative_depth", "example", "n_train", "n_validation", "features", "logme",
                    "h_score_shrinkage", "probe_error", "probe_metric", "leep", "sample_note"]


def estimates_table(files: list[str | Path], layer_groups: dict[str, int]) -> pd.DataFrame:
    """Every estimate of every unit and l_c, from the estimates jobs' JSON files. ``sample_note``
    says where the sample has no more examples than features (LogME and the H-score then fit
    the labels by interpolation and say little)."""
    rows = []
    for path in files:
        data = read_json(path)
        screen = data["screen"]
        for unit in data["units"]:
            for lc, values in unit["lc"].items():
                d = unit["features"][int(lc) - 1]
                rows.append({**{k: screen[k] for k in ("experiment", "arch", "source", "target", "seed")},
                             "fold": unit["fold"], "source_fold": unit["source_fold"], "lc": int(lc),
                             "relative_depth": int(lc) / layer_groups[screen["arch"]], "example": unit["example"],
                             "n_train": unit["n_train"], "n_validation": unit["n_validation"], "features": d,
                             **values, "probe_metric": data["probe_metric"],
                             "sample_note": (f"{unit['n_train']} examples ≤ {d} features: LogME and the H-score "
                                             "interpolate" if unit["n_train"] <= d else "")})
    table = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    table["leep"] = pd.to_numeric(table["leep"])
    return table.sort_values(["experiment", "arch", "source", "target", "seed", "fold", "lc"]).reset_index(drop=True)


AGREEMENT_COLUMNS = ["experiment", "arch", "upper_groups", "scope", "source", "target", "lc", "estimate", "tau",
                     "p_value", "n_points", "p_method"]


def estimate_points(estimates: pd.DataFrame, transferability: pd.DataFrame) -> pd.DataFrame:
    """(experiment, arch, family, source, target, l_c) points: the estimates' mean over units and
    seeds beside the measured normalised gap of the test split."""
    means = estimates.groupby(["experiment", "arch", "source", "target", "lc"])[list(ESTIMATES)].mean().reset_index()
    measured = transferability[(transferability["kind"] == "transfer") & (transferability["split"] == "test")]
    measured = measured[["experiment", "arch", "upper_groups", "source", "target", "lc", "gap", "normalised_gap"]]
    return means.merge(measured, on=["experiment", "arch", "source", "target", "lc"], how="inner")


def agreement_table(estimates: pd.DataFrame, transferability: pd.DataFrame) -> pd.DataFrame:
    """Kendall's τ of every estimate with the measured normalised gap, per scope (see the
    module's docstring)."""
    points = estimate_points(estimates, transferability)
    rows = []
    scopes = {"curve": ["source", "target"], "lc": ["lc"], "all": []}
    for (experiment, arch, family), mine in points.groupby(["experiment", "arch", "upper_groups"], sort=True):
        for scope, keys in scopes.items():
            for key, group in (mine.groupby(keys, sort=True) if keys else [((), mine)]):
                key = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
                # within a curve (one target) the gap ranks as the normalised gap does, and is
                # defined where the target's primary has no headroom; across targets only the
                # normalised gap compares
                measured = group["gap"] if scope == "curve" else group["normalised_gap"]
                for name, larger_is_better in ESTIMATES.items():
                    predicted_badness = -group[name] if larger_is_better else group[name]
                    result = rank_agreement(predicted_badness, measured)
                    rows.append({"experiment": experiment, "arch": arch, "upper_groups": family, "scope": scope,
                                 "source": key.get("source", ""), "target": key.get("target", ""),
                                 "lc": key.get("lc", pd.NA), "estimate": name, "tau": result.tau,
                                 "p_value": result.p_value, "n_points": result.n, "p_method": result.method})
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    return table.astype({"lc": "Int64", "n_points": int})


SIMILARITY_COLUMNS = ["experiment", "arch", "comparison", "upper_groups", "source", "target", "seed", "fold", "lc",
                      "group_index", "group", "frozen", "cka_debiased", "cka_plugin", "n"]


def similarity_table(estimate_files: list[str | Path], similarity_files: list[str | Path]) -> pd.DataFrame:
    """The CKA per group of the primaries (from the estimates jobs) and of every transfer to its
    start (from the similarity jobs)."""
    rows = []
    for path in estimate_files:
        data = read_json(path)
        screen = data["screen"]
        for unit in data["units"]:
            for g, (debiased, plugin) in enumerate(zip(unit["cka_primaries"], unit["cka_primaries_plugin"])):
                rows.append({**{k: screen[k] for k in ("experiment", "arch", "source", "target", "seed")},
                             "comparison": "source vs target primary", "upper_groups": "", "fold": unit["fold"],
                             "lc": pd.NA, "group_index": g + 1, "group": data["groups"][g], "frozen": False,
                             "cka_debiased": debiased, "cka_plugin": plugin, "n": unit["n_train"]})
    for path in similarity_files:
        data = read_json(path)
        screen = data["screen"]
        for unit in data["units"]:
            for lc, values in unit["lc"].items():
                for g, debiased in enumerate(values):
                    rows.append({**{k: screen[k] for k in ("experiment", "arch", "source", "target", "seed")},
                                 "comparison": "transfer vs its start", "upper_groups": screen["family"],
                                 "fold": unit["fold"], "lc": int(lc), "group_index": g + 1,
                                 "group": data["groups"][g], "frozen": g + 1 <= int(lc), "cka_debiased": debiased,
                                 "cka_plugin": np.nan, "n": unit["n"]})
    table = pd.DataFrame(rows, columns=SIMILARITY_COLUMNS)
    return table.astype({"lc": "Int64"})
