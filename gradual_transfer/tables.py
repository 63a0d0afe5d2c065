"""The tables of a run: every model's metrics in one long-form table, its summaries over units of
replication, the transferability table and matrix, the training curves and the
per-speaker PER. The statistics live in :mod:`gradual_transfer.statistics`, the figures drawn from
these tables in :mod:`gradual_transfer.figures`, what the grid cost in :mod:`gradual_transfer.cost`.

The results table has one row per (model, split, metric): ``experiment, arch, kind,
upper_groups, source, target, seed, fold, lc, split, metric, value, primary_value, control_value,
decode_at_grid_edge``. ``kind`` is ``primary``, ``transfer`` or ``control`` (a self-transfer:
source = target); ``upper_groups`` the family of a transfer or control (``copy`` or ``reinit``,
:mod:`gradual_transfer.grid`; empty for a primary). Every transfer row carries its baselines,
paired run by run: ``primary_value`` is the target's own primary model and ``control_value`` the
target's self-transfer of the same family at the same l_c, both of the same seed and fold (the
fold-0 model for targets without folds). So the table feeds seaborn directly, and every
comparison below is a paired one. ``decode_at_grid_edge`` says, for a decoded (ASR) model,
whether its acoustic scale or insertion penalty, tuned on dev, lies at an edge of the grid
searched (``none``, or which setting at which edge): an optimum there may lie beyond the grid.

Comparisons are made on errors, whatever the metric: accuracy becomes 100 − accuracy, PER and
unweighted error are errors already, so a positive gap always means "worse than the baseline".

Longer than the library's ~350-line rule of thumb because the tables share their keys and
baselines (a result's primary and control values feed the summary and the transferability
table); their statistics live in :mod:`gradual_transfer.statistics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from gradual_transfer.grid import FAMILIES
from gradual_transfer.io import atomic_path, read_json
from gradual_transfer.statistics import (ALPHA, MIN_UNITS_FOR_INTERVAL, ONSET_PROCEDURE, UNDERTRAINED_MARGIN, ci95,
                                         hodges_lehmann, holm, interval_note, onset, signed_rank_test,
                                         unit_of_replication, unit_values)

COLUMNS = ["experiment", "arch", "kind", "upper_groups", "source", "target", "seed", "fold", "lc", "split", "metric",
           "value", "primary_value", "control_value", "decode_at_grid_edge"]


METRICS = {"accuracy": "top-1 accuracy (%)", "per": "phone error rate (%)", "ue": "unweighted error (%)"}


HIGHER_IS_BETTER = {"accuracy"}


KIND_ORDER = {"primary": 0, "transfer": 1, "control": 2}


FAMILY_ORDER = {family: i for i, family in enumerate(FAMILIES)}


def error(values, metric: str):
    """A score as an error in per cent (lower is better): accuracy → 100 − accuracy."""
    return 100.0 - values if metric in HIGHER_IS_BETTER else values


def _attach(table: pd.DataFrame, baselines: pd.DataFrame, on: list[str], name: str) -> pd.DataFrame:
    """Add the baselines' ``value`` as column ``name``, matched on ``on``. A target without folds
    (TIMIT, CIFAR, SVHN) has its baseline at fold 0 whichever fold the run carries (SER → ASR
    transfers carry the SER fold of their source)."""
    base = baselines[on + ["value"]].rename(columns={"value": name})
    table = table.merge(base, on=on, how="left")
    fold0 = base[base["fold"] == 0].drop(columns="fold").rename(columns={name: "_fold0"})
    table = table.merge(fold0, on=[k for k in on if k != "fold"], how="left")
    table[name] = table[name].fillna(table.pop("_fold0"))
    return table


def grid_edge_note(decode: dict) -> str | None:
    """What a decode's ``metrics.json`` says about its tuned settings and the grid's edges:
    ``none``, or e.g. ``acoustic_scale=1 (largest)``; None for a model that was not decoded
    (or a decode written before the edges were recorded)."""
    edges = decode.get("tuned_at_grid_edge")
    if edges is None:
        return None
    return "; ".join(f"{name}={decode[name]:g} ({edge})" for name, edge in sorted(edges.items())) or "none"


def results_table(metrics_files: list[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_files:
        m = read_json(path)
        primary = m["kind"] == "primary"
        for split in ("validation", "test"):
            for metric in METRICS:
                if metric in m[split]:
                    rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"],
                                 "upper_groups": pd.NA if primary else m.get("upper_groups", "copy"),
                                 "source": m["source"], "target": m["target"], "seed": int(m.get("seed", 0)),
                                 "fold": int(m["fold"]), "lc": None if primary else int(m["lc"]),
                                 "split": split, "metric": metric, "value": float(m[split][metric]),
                                 "decode_at_grid_edge": grid_edge_note(m)})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("primary_value", "control_value")])
    table["lc"] = table["lc"].astype("Int64")
    table["upper_groups"] = table["upper_groups"].astype("string")
    table["decode_at_grid_edge"] = table["decode_at_grid_edge"].astype("string")
    keys = ["experiment", "arch", "target", "seed", "fold", "split", "metric"]
    table = _attach(table, table[table["kind"] == "primary"], keys, "primary_value")
    table = _attach(table, table[table["kind"] == "control"], keys + ["upper_groups", "lc"], "control_value")
    table.loc[table["kind"] != "transfer", "control_value"] = float("nan")
    order = {"kind": KIND_ORDER, "upper_groups": FAMILY_ORDER}
    table = table.sort_values(["experiment", "arch", "target", "seed", "fold", "kind", "upper_groups", "source", "lc",
                               "split", "metric"],
                              key=lambda c: c.map(order[c.name]) if c.name in order else c).reset_index(drop=True)
    return table[COLUMNS]


FAMILY_DEFAULT = "copy"  # results tables written before the reinit family existed hold copy runs only


def with_family(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its ``upper_groups`` column (how the groups above l_c start: ``copy`` or
    ``reinit``; empty for primaries); a table without one holds the paper's ``copy`` runs."""
    if "upper_groups" in table.columns:
        return table
    table = table.copy()
    family = pd.Series(FAMILY_DEFAULT, index=table.index, dtype=object)
    family[table["kind"] == "primary"] = pd.NA
    table.insert(table.columns.get_loc("kind") + 1, "upper_groups", family)
    return table


SETTING = ["experiment", "arch", "kind", "upper_groups", "source", "target", "lc", "split", "metric"]
SUMMARY_COLUMNS = SETTING + ["unit", "n_units", "n_runs", "mean", "std", "ci95", "interval_note", "primary_mean"]


def unit_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every (model setting, split, metric) as its units of replication, one row per unit, as
    :func:`summary_table` averages them (:func:`gradual_transfer.statistics.unit_values`): ``unit``
    (fold or seed), ``unit_id`` (which fold or seed), ``value`` and ``primary_value`` (the mean
    over the unit's runs). What the figures draw as points. Runs without a value are left out."""
    rows = []
    for key, group in with_family(table).groupby(SETTING, dropna=False, sort=True):
        runs = group[np.isfinite(group["value"].astype(float))]
        if runs.empty:
            continue
        unit, units = unit_values(runs, ["value", "primary_value"])
        units = units.reset_index().rename(columns={unit: "unit_id"})
        rows.append(units.assign(**dict(zip(SETTING, key)), unit=unit))
    columns = SETTING + ["unit", "unit_id", "value", "primary_value"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns].astype({"lc": "Int64", "unit_id": int})


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Every (model setting, split, metric) over its units of replication
    (:mod:`gradual_transfer.statistics`): folds, each the mean of its seeds, where the runs have
    folds, else seeds. ``unit`` and ``n_units`` say which and how many, ``n_runs`` how many runs
    (seeds × folds) they average; ``mean``, ``std`` and ``ci95`` (half-width of the 95 % Student t
    interval, empty for one unit) are over units, as is ``primary_mean``, the mean of the target's
    primary models; ``interval_note`` says when the interval is uninformative (fewer than
    3 units, or no spread). Runs without a value are not counted."""
    rows = []
    for key, group in with_family(table).groupby(SETTING, dropna=False, sort=True):
        runs = group[np.isfinite(group["value"].astype(float))]
        _, units = unit_values(runs, ["value", "primary_value"])
        std = units["value"].std()
        rows.append({**dict(zip(SETTING, key)), "unit": unit_of_replication(group["fold"]), "n_units": len(units),
                     "n_runs": len(runs), "mean": units["value"].mean(), "std": std, "ci95": ci95(std, len(units)),
                     "interval_note": interval_note(std, len(units)), "primary_mean": units["primary_value"].mean()})
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return summary.astype({"lc": "Int64", "n_units": int, "n_runs": int})


# A transfer's gap to the target's primary splits at the self-transfer control of its family into
# (the control's own gap, the rest: transfer minus control), named by what each measures.
# reinit (Yosinski et al.'s BnB and AnB): splitting co-adapted layers, and the frozen layers'
# specificity. copy (the paper's recipe: the control re-heads the target's own model and
# fine-tunes it further, splitting nothing): what a new head and further fine-tuning alone
# change, and the cost of the source's features.
DECOMPOSITION = {"reinit": ("co_adaptation", "specificity"),
                 "copy": ("rehead_and_finetune", "source_features_cost")}
# What the two parts measure, in words: the one description the column descriptions, the
# captions and the report's landing text read.
DECOMPOSITION_MEANING = {
    "reinit": ("co-adaptation: the cost of splitting co-adapted layers (Yosinski's selffer BnB minus baseB)",
               "specificity of the frozen layers to the source task (transfer AnB minus selffer BnB)"),
    "copy": ("what a new output layer and further fine-tuning of the target's own model change (neither "
             "co-adaptation nor specificity: nothing is re-initialised)",
             "the cost of the source's features (transfer minus control)"),
}


TRANSFERABILITY_KEYS = ["experiment", "arch", "kind", "upper_groups", "source", "target", "split", "metric", "lc"]


CURVE = TRANSFERABILITY_KEYS[:-1]  # one curve against l_c: a family of tests for Holm


TESTED_SPLIT = "test"  # validation chose each model (early stopping): it is described, never tested


def _beyond_control_columns() -> list[str]:
    columns = []
    for control_part, rest in DECOMPOSITION.values():
        columns += [control_part, rest, f"{rest}_hl", f"{rest}_ci95", f"{rest}_p", f"{rest}_p_holm",
                    f"{rest}_p_fixed_sequence"]
    return columns


TRANSFERABILITY_COLUMNS = (TRANSFERABILITY_KEYS
                           + ["unit", "n_units", "budget", "relative_depth", "error", "primary_error", "trivial_error",
                              "gap", "gap_hl", "gap_std", "gap_ci95", "interval_note", "gap_p", "gap_p_holm",
                              "gap_p_fixed_sequence", "normalised_gap"]
                           + _beyond_control_columns()
                           + ["diagnostic", "test_note", "onset_lc", "onset_measure", "onset_procedure",
                              "onset_reason"])


def _test(differences: pd.Series, tested: bool) -> tuple[dict, str]:
    """The exact test of one measure's differences over units: its p-value (none off the tested
    split) and direction, and why there is no p-value."""
    if not tested:
        return {"p": float("nan"), "direction": 0}, ""
    result = signed_rank_test(differences)
    return {"p": result.p_value, "direction": result.direction}, result.reason


def _transferability_row(group: pd.DataFrame, family: str) -> dict:
    """One (setting, l_c): means, interval and tests over the units of the runs that have
    everything the row compares (the transfer, its primary and, where the row has one, its
    control). Tests only on the test split: validation chose the model."""
    with_control = bool((group["kind"] == "transfer").all() and group["control_error"].notna().any())
    runs = group.dropna(subset=["error", "primary_error"] + (["control_error"] if with_control else []))
    _, units = unit_values(runs, ["error", "primary_error", "gap", "control_gap", "beyond_control"])
    n = len(units)
    tested = group["split"].iloc[0] == TESTED_SPLIT
    gap, gap_reason = _test(units["gap"], tested)
    row = {"unit": unit_of_replication(group["fold"]), "n_units": n, "error": units["error"].mean(),
           "primary_error": units["primary_error"].mean(), "gap": units["gap"].mean(),
           "gap_hl": hodges_lehmann(units["gap"]), "gap_std": units["gap"].std(),
           "gap_ci95": ci95(units["gap"].std(), n), "interval_note": interval_note(units["gap"].std(), n),
           "gap_p": gap["p"], "_gap_direction": gap["direction"], "_gap_reason": gap_reason,
           "_largest_gap": units["gap"].max()}
    notes = [f"gap: {gap_reason}"] if gap_reason else []
    if with_control:
        control_part, rest = DECOMPOSITION[family]
        beyond, beyond_reason = _test(units["beyond_control"], tested)
        row.update({control_part: units["control_gap"].mean(), rest: units["beyond_control"].mean(),
                    f"{rest}_hl": hodges_lehmann(units["beyond_control"]),
                    f"{rest}_ci95": ci95(units["beyond_control"].std(), n), f"{rest}_p": beyond["p"],
                    "_beyond_direction": beyond["direction"], "_beyond_reason": beyond_reason})
        notes += [f"{rest}: {beyond_reason}"] if beyond_reason else []
    if not tested:
        notes = [f"{group['split'].iloc[0]} split: it chose the model (early stopping), so it is described, not tested"]
    row["test_note"] = "; ".join(notes)
    return row


def _curve_statistics(curve: pd.DataFrame, family: str) -> pd.DataFrame:
    """Holm over the curve's l_c (for readers who test one l_c alone) and the fixed-sequence
    adjustment from the deepest l_c, for the gap and for the part beyond the control; the onset
    of the curve's measure (the part beyond the control where there is one, else the gap) by
    the fixed sequence (:func:`gradual_transfer.statistics.onset`). Off the tested split: none."""
    curve = curve.sort_values("lc").copy()
    rest = DECOMPOSITION[family][1]
    measure = rest if curve[rest].notna().any() else "gap"
    sequences = {}
    for name, direction in (("gap", "_gap_direction"), (rest, "_beyond_direction")):
        curve[f"{name}_p_holm"] = holm(curve[f"{name}_p"])
        directions = curve[direction].fillna(0).astype(int).tolist()
        reasons = [r if isinstance(r, str) else "" for r in curve["_gap_reason" if name == "gap" else "_beyond_reason"]]
        sequences[name] = onset(curve["lc"].tolist(), directions, curve[f"{name}_p"].tolist(), reasons)
        curve[f"{name}_p_fixed_sequence"] = sequences[name][1]
    if curve["split"].iloc[0] != TESTED_SPLIT:
        lc, why = None, f"{curve['split'].iloc[0]} split: it chose the model; onsets are tested on the test split"
    else:
        lc, _, why = sequences[measure]
    deepest = int(curve["lc"].max())
    return curve.assign(onset_lc=lc, onset_measure=measure, onset_reason=why,
                        onset_procedure=f"{ONSET_PROCEDURE} ({deepest}, then shallower), each at {ALPHA}")


def _undertrained_primary(rows: pd.DataFrame) -> pd.Series:
    """The diagnostic of a self-transfer control that beats its primary (its gap below zero)
    beyond its 95 % interval, or, with fewer than 3 units, in every unit by more than
    UNDERTRAINED_MARGIN of the primary's headroom: further training of the target's own model
    helped, so the primary was not trained to convergence, and every gap to it is read against
    too weak a baseline. On the test split; the transfers of that control say so too."""
    control = (rows["kind"] == "control") & (rows["split"] == TESTED_SPLIT)
    enough = rows["n_units"] >= MIN_UNITS_FOR_INTERVAL
    beyond_interval = enough & (rows["gap"] + rows["gap_ci95"] < 0)
    every_unit = ~enough & (rows["_largest_gap"] < 0) & (rows["normalised_gap"] < -UNDERTRAINED_MARGIN)
    flagged = control & (beyond_interval | every_unit)
    notes = pd.Series("", index=rows.index, dtype=object)
    for i in rows.index[flagged]:
        row = rows.loc[i]
        evidence = (f"beyond its 95 % interval (±{row['gap_ci95']:.3g})" if beyond_interval[i] else
                    f"in every unit, by {-row['normalised_gap']:.0%} of the headroom (too few units for an interval)")
        notes[i] = (f"primary under-trained: its self-transfer control has {-row['gap']:.3g} points less error "
                    f"({row['error']:.3g} vs {row['primary_error']:.3g}; n = {row['n_units']}), {evidence}")
    keys = ["experiment", "arch", "upper_groups", "target", "split", "lc"]
    for i in rows.index[flagged]:
        same = (rows[keys] == rows.loc[i, keys]).all(axis=1) & (rows["kind"] == "transfer")
        notes[same] = "primary under-trained: this target's self-transfer control beats it (see the control row)"
    return notes


def transferability_table(table: pd.DataFrame, trivial_errors: dict[str, float],
                          layer_groups: dict[str, int], budgets: dict[str, dict[str, dict]] | None = None) -> pd.DataFrame:
    """How much of its target's performance each transfer (and each self-transfer control) gives
    up, per (architecture, family, source, target, split) and l_c. Scores are read as errors
    (100 − accuracy), so positive is worse. Runs are paired (a transfer with the primary and
    control of its own seed and fold) and averaged into units of replication
    (:mod:`gradual_transfer.statistics`); every statistic is over the row's ``n_units`` units.

    - ``gap``: transfer error minus the target primary's error (the mean over units), with its
      Hodges–Lehmann estimate ``gap_hl``, standard deviation, 95 % interval (``interval_note``
      when it says little), and on the test split the exact signed-rank p-value, its Holm
      adjustment over the curve's l_c and its fixed-sequence adjustment from the deepest l_c;
    - ``normalised_gap``: the mean gap over the primary's headroom, ``trivial_error`` (the error
      of a predictor that learnt nothing, `trivial_errors` by target task) minus its error: the
      fraction of what the target's own model gained that the transfer loses;
    - ``relative_depth``: l_c over the architecture's number of layer groups (`layer_groups`);
    - with the control of the row's family, the gap split in two (:data:`DECOMPOSITION`): the
      control's own gap and the rest (transfer minus control, run by run) with its interval and
      tests. Only ``reinit`` rows carry ``co_adaptation`` and ``specificity``;
    - ``onset_lc``: the shallowest l_c from which ``onset_measure`` (the rest beyond the
      control, or the gap without a control) is above zero at it and every deeper swept l_c by
      the fixed-sequence procedure (``onset_procedure``, :func:`gradual_transfer.statistics.onset`;
      the direction from the rank statistic, not the mean), on the test split only; empty with
      the ``onset_reason`` otherwise. ``test_note`` says why a test has no p-value;
    - ``budget``: the recipe the row's models trained with (`budgets`: target → family → its
      recipe's name, epochs and head warm-up), so that contrasts across families can be read
      against it; ``diagnostic``: "primary under-trained" where a self-transfer control beats its
      primary (:func:`_undertrained_primary`).
    """
    runs = with_family(table)
    runs = runs[runs["kind"].isin(["transfer", "control"])].copy()
    for name, column in (("trivial error", "target"), ("layer-group count", "arch")):
        given = trivial_errors if column == "target" else layer_groups
        missing = sorted(set(runs[column]) - set(given))
        if missing:
            raise ValueError(f"no {name} for {column} {', '.join(missing)}: pass it to transferability_table")
    err = pd.Series([error(v, m) for v, m in zip(runs["value"], runs["metric"])], index=runs.index)
    runs["error"] = err
    runs["primary_error"] = [error(v, m) for v, m in zip(runs["primary_value"], runs["metric"])]
    runs["control_error"] = [error(v, m) for v, m in zip(runs["control_value"], runs["metric"])]
    runs["gap"] = runs["error"] - runs["primary_error"]
    runs["control_gap"] = runs["control_error"] - runs["primary_error"]
    runs["beyond_control"] = runs["error"] - runs["control_error"]

    rows = [{**dict(zip(TRANSFERABILITY_KEYS, key)), **_transferability_row(group, key[3])}
            for key, group in runs.groupby(TRANSFERABILITY_KEYS, sort=True)]
    private = ["_gap_reason", "_beyond_reason", "_gap_direction", "_beyond_direction", "_largest_gap"]
    summary = pd.DataFrame(rows, columns=TRANSFERABILITY_COLUMNS + private)
    if summary.empty:
        return summary[TRANSFERABILITY_COLUMNS]
    summary["lc"] = summary["lc"].astype(int)
    summary["relative_depth"] = summary["lc"] / summary["arch"].map(layer_groups)
    summary["trivial_error"] = summary["target"].map(trivial_errors).astype(float)
    headroom = summary["trivial_error"] - summary["primary_error"]
    summary["normalised_gap"] = (summary["gap"] / headroom).where(headroom > 0)
    summary = pd.concat([_curve_statistics(curve, key[3])
                         for key, curve in summary.groupby(CURVE, sort=False)], ignore_index=True)
    summary["diagnostic"] = _undertrained_primary(summary)
    summary["budget"] = [budget_text((budgets or {}).get(target, {}).get(family))
                         for target, family in zip(summary["target"], summary["upper_groups"])]
    summary = summary.astype({"n_units": int, "onset_lc": "Int64"})
    summary = summary.sort_values(TRANSFERABILITY_KEYS, key=lambda c: c.map(KIND_ORDER) if c.name == "kind" else c)
    return summary[TRANSFERABILITY_COLUMNS].reset_index(drop=True)


def budget_text(budget: dict | None) -> str:
    """A family's training budget in words: ``finetune: 2 epochs of batch 32, after 20 head
    warm-up iterations``; empty where it is not known."""
    if not budget:
        return ""
    text = f"{budget['recipe']}: {budget['epochs']} epochs of batch {budget['batch_size']}"
    warmup = budget.get("head_warmup_iterations")
    return text + (f", after {warmup} head warm-up iterations (l_c < L_H)" if warmup else "")


def mean_over_depth(relative_depth: Sequence[float], values: Sequence[float],
                    span: tuple[float, float] | None = None) -> float:
    """The mean of a curve over relative depth: the trapezoid area under the values against
    l_c / L_H over `span` (the curve's own swept span by default), divided by its width (the
    value itself for a span of one point). Unlike the mean over the swept l_c, it weighs every
    fraction of the network alike, so architectures with different depths and sweeps compare.
    A span inside the curve's is cut out of it, the values at its ends interpolated linearly
    between the neighbouring l_c; a span the curve does not cover gives NaN."""
    points = pd.DataFrame({"x": relative_depth, "y": values}).dropna().sort_values("x")
    if points.empty:
        return float("nan")
    x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
    low, high = (x[0], x[-1]) if span is None else span
    if low < x[0] - DEPTH_TOLERANCE or high > x[-1] + DEPTH_TOLERANCE:
        return float("nan")
    inside = (x > low) & (x < high)
    x_cut = np.concatenate([[low], x[inside], [high]])
    y_cut = np.concatenate([[np.interp(low, x, y)], y[inside], [np.interp(high, x, y)]])
    if high - low <= DEPTH_TOLERANCE:
        return float(y[np.abs(x - low) <= DEPTH_TOLERANCE].mean()) if span is None else float(y_cut[0])
    return float(np.trapezoid(y_cut, x_cut) / (high - low))


DEPTH_TOLERANCE = 1e-9  # relative depths are ratios of small integers: equal within float noise


def common_depth_span(transferability: pd.DataFrame, split: str = "test") -> tuple[float, float] | None:
    """The relative-depth span (l_c / L_H) that every curve of `transferability` sweeps: from the
    largest of their shallowest points to the smallest of their deepest, over every architecture
    and family of the rows given. Figure 3 averages every cell of an experiment over it, so that
    the families compare like with like (``reinit`` has no l_c = 0). None without rows."""
    rows = with_family(transferability)
    rows = rows[(rows["split"] == split) & rows["normalised_gap"].notna()]
    if rows.empty:
        return None
    curves = rows.groupby(["arch", "upper_groups", "source", "target"])["relative_depth"]
    low, high = float(curves.min().max()), float(curves.max().min())
    return (low, high) if low <= high + DEPTH_TOLERANCE else None


def normalised_beyond_control(transferability: pd.DataFrame) -> pd.Series:
    """Per transfer row, the part of its gap beyond its self-transfer control (``specificity``
    for ``reinit``, ``source_features_cost`` for ``copy``: transfer minus control, run by run)
    over the same headroom as ``normalised_gap``: the share of the target primary's headroom
    that the control does not explain. NaN on control rows and without a control."""
    rows = with_family(transferability)
    rest = pd.Series(np.nan, index=rows.index, dtype=float)
    for family, (_, part) in DECOMPOSITION.items():
        mine = (rows["upper_groups"] == family) & (rows["kind"] == "transfer")
        if part in rows.columns:
            rest[mine] = rows.loc[mine, part].astype(float)
    headroom = rows["trivial_error"].astype(float) - rows["primary_error"].astype(float)
    return (rest / headroom).where(headroom > 0)


MATRIX_MEASURES = {"normalised_gap": lambda rows: rows["normalised_gap"].astype(float),
                   "normalised_beyond_control": normalised_beyond_control}


def transferability_matrix(transferability: pd.DataFrame, arch: str, split: str = "test",
                           upper_groups: str = FAMILY_DEFAULT, span: tuple[float, float] | None = None,
                           measure: str = "normalised_gap") -> pd.DataFrame:
    """Figure 3's matrix for one architecture and family: rows sources, columns targets, each
    cell a curve of `measure` (:data:`MATRIX_MEASURES`: the normalised gap, whose diagonal is
    the self-transfer control's, or the normalised part beyond the control, whose diagonal is
    empty) averaged over relative depth (:func:`mean_over_depth`) over `span` (each curve's own
    by default)."""
    rows = with_family(transferability)
    rows = rows[(rows["arch"] == arch) & (rows["split"] == split) & (rows["upper_groups"] == upper_groups)]
    rows = rows.assign(_measure=MATRIX_MEASURES[measure](rows))
    tasks = sorted(set(rows["source"]) | set(rows["target"]))
    cells = pd.Series({pair: mean_over_depth(curve["relative_depth"], curve["_measure"], span)
                       for pair, curve in rows.groupby(["source", "target"])}, dtype=float)
    if cells.empty:
        return pd.DataFrame(index=tasks, columns=tasks, dtype=float)
    cells.index.names = ["source", "target"]
    return cells.unstack("target").reindex(index=tasks, columns=tasks).astype(float)


def asymmetry(matrix: pd.DataFrame) -> pd.DataFrame:
    """A → B minus B → A of a transferability matrix (positive: A transfers worse to B than B to
    A); the diagonal is empty."""
    values = matrix.to_numpy() - matrix.to_numpy().T
    np.fill_diagonal(values, np.nan)
    return pd.DataFrame(values, index=matrix.index, columns=matrix.columns)


def write_table(table: pd.DataFrame, parquet: str | Path, tsv: str | Path, summary_tsv: str | Path | None = None) -> None:
    with atomic_path(parquet) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if summary_tsv is not None:
        write_tsv(summary_table(table), summary_tsv)


def _is_p_value(column: str) -> bool:
    return column.endswith(("_p", "_p_holm")) or column == "p_value"


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """A table as TSV at full precision (every float as its shortest exact repr), p-values in
    scientific notation; empty cells for missing values."""
    table = table.copy()
    for column in filter(_is_p_value, table.columns):
        table[column] = [np.format_float_scientific(p, unique=True) if np.isfinite(p) else ""
                         for p in table[column].astype(float)]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


CURVES_COLUMNS = ["experiment", "arch", "kind", "upper_groups", "source", "target", "seed", "fold", "lc", "epoch",
                  "phase", "train_loss", "score"]


def curves_table(metrics_files: list[str | Path]) -> pd.DataFrame:
    """Every training job's per-epoch history in long form: identity (with the family,
    ``upper_groups``, as in the results table: empty for primaries, ``copy`` for files written
    before families existed), epoch, phase, the validation score (the model-selection metric)
    and the training loss."""
    rows = []
    for path in metrics_files:
        m = read_json(path)
        family = pd.NA if m["kind"] == "primary" else m.get("upper_groups", FAMILY_DEFAULT)
        for entry in m.get("history", []):
            rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"], "upper_groups": family,
                         "source": m["source"], "target": m["target"], "seed": int(m.get("seed", 0)),
                         "fold": int(m["fold"]), "lc": int(m["lc"]), "epoch": int(entry["epoch"]),
                         "phase": entry.get("phase", "train"), "train_loss": entry.get("train_loss"),
                         "score": entry.get("score")})
    table = pd.DataFrame(rows, columns=CURVES_COLUMNS)
    table["upper_groups"] = table["upper_groups"].astype("string")
    return table


def per_speaker_table(files: list[str | Path], labels: list[dict]) -> pd.DataFrame:
    """The per-speaker PER files of several decodes in one table, each row prefixed by its
    decode's label (e.g. architecture, seed, split)."""
    tables = [pd.read_csv(path, sep="\t").assign(**label) for path, label in zip(files, labels)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    front = list(labels[0]) if labels else []
    return table[front + [c for c in table.columns if c not in front]]
