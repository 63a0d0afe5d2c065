"""Aggregation of every model's metrics into one long-form table, its summaries, and the figures.

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
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.grid import FAMILIES
from gradual_transfer.io import atomic_path, read_json

COLUMNS = ["experiment", "arch", "kind", "upper_groups", "source", "target", "seed", "fold", "lc", "split", "metric",
           "value", "primary_value", "control_value", "decode_at_grid_edge"]
METRICS = {"accuracy": "top-1 accuracy (%)", "per": "phone error rate (%)", "ue": "unweighted error (%)"}
HIGHER_IS_BETTER = {"accuracy"}
KIND_ORDER = {"primary": 0, "transfer": 1, "control": 2}
FAMILY_ORDER = {family: i for i, family in enumerate(FAMILIES)}


def error(values, metric: str):
    """A score as an error in per cent (lower is better): accuracy → 100 − accuracy."""
    return 100.0 - values if metric in HIGHER_IS_BETTER else values


def ci95(std: float, n: int) -> float:
    """Half-width of the 95 % confidence interval of a mean of n runs (Student t, n − 1 degrees
    of freedom); NaN for a single run, which has no spread to estimate."""
    from scipy.stats import t

    if n < 2 or not np.isfinite(std):
        return float("nan")
    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


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


SETTING = ["experiment", "arch", "kind", "source", "target", "lc", "split", "metric"]


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, number of runs (seeds × folds) and the 95 % confidence interval
    of the mean of every (model setting, split, metric), with the mean primary baseline. Tasks
    without folds and a single seed have one run and no interval."""
    grouped = table.groupby(SETTING, dropna=False, sort=True)
    summary = grouped["value"].agg(mean="mean", std="std", runs="count").reset_index()
    summary["ci95"] = [ci95(std, n) for std, n in zip(summary["std"], summary["runs"])]
    summary["primary_mean"] = grouped["primary_value"].mean().to_numpy()
    return summary


def _wilcoxon(differences: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of paired differences (exact for the
    small numbers of runs here); 1 when every difference is 0, NaN for fewer than 2 runs."""
    from scipy.stats import wilcoxon

    differences = differences[np.isfinite(differences)]
    if len(differences) < 2:
        return float("nan")
    if not differences.any():
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(wilcoxon(differences).pvalue)


def transferability_table(table: pd.DataFrame) -> pd.DataFrame:
    """How much of its target's performance each transfer (and each self-transfer control) gives
    up, per (architecture, source, target, split) and l_c, over the paired runs (seeds × folds):

    - ``gap``: error of the transfer minus error of the target's primary model, run by run
      (positive: worse), with its standard deviation and 95 % interval (``gap_ci95``);
    - ``normalised_gap``: the mean gap over the primary's mean error (the relative increase of
      the error; Figure 3 averages it over l_c);
    - ``p_value``: Wilcoxon signed-rank test of the paired gaps (transfer vs primary);
    - ``onset_lc``: the first l_c whose gap exceeds its interval (lower bound above 0), the
      "specificity onset"; empty without an interval (one run) or when no gap exceeds it;
    - with the control: ``co_adaptation``, the control's own gap at that l_c (what freezing
      the target's *own* first l_c groups already costs), and ``specificity``, the rest
      (transfer error minus control error, run by run) with its interval.
    """
    runs = table[table["kind"].isin(["transfer", "control"])].copy()
    err = pd.Series([error(v, m) for v, m in zip(runs["value"], runs["metric"])], index=runs.index)
    err_primary = pd.Series([error(v, m) for v, m in zip(runs["primary_value"], runs["metric"])], index=runs.index)
    err_control = pd.Series([error(v, m) for v, m in zip(runs["control_value"], runs["metric"])], index=runs.index)
    runs["error"], runs["primary_error"] = err, err_primary
    runs["gap"] = err - err_primary
    runs["control_gap"] = err_control - err_primary
    runs["specificity"] = err - err_control

    def summarise(group: pd.DataFrame) -> pd.Series:
        n = len(group)
        gap_std = group["gap"].std()
        spec = group["specificity"].dropna()
        primary_error = group["primary_error"].mean()
        return pd.Series({
            "runs": n, "error": group["error"].mean(), "primary_error": primary_error,
            "gap": group["gap"].mean(), "gap_std": gap_std, "gap_ci95": ci95(gap_std, n),
            "normalised_gap": group["gap"].mean() / primary_error if primary_error > 0 else float("nan"),
            "p_value": _wilcoxon(group["gap"].to_numpy(dtype=float)),
            "co_adaptation": group["control_gap"].mean(),
            "specificity": spec.mean() if len(spec) else float("nan"),
            "specificity_ci95": ci95(spec.std(), len(spec)),
        })

    keys = ["experiment", "arch", "kind", "source", "target", "split", "metric", "lc"]
    columns = ["runs", "error", "primary_error", "gap", "gap_std", "gap_ci95", "normalised_gap", "p_value",
               "co_adaptation", "specificity", "specificity_ci95"]
    if runs.empty:
        return pd.DataFrame(columns=keys + columns + ["onset_lc"])
    summary = runs.groupby(keys, sort=True).apply(summarise, include_groups=False).reset_index()
    summary["runs"] = summary["runs"].astype(int)
    summary["lc"] = summary["lc"].astype(int)

    def onset(group: pd.DataFrame) -> float:
        exceeded = group[group["gap"] - group["gap_ci95"] > 0]
        return float(exceeded["lc"].min()) if len(exceeded) else float("nan")

    curve = keys[:-1]
    onsets = summary.groupby(curve, sort=False).apply(onset, include_groups=False).rename("onset_lc").reset_index()
    summary = summary.merge(onsets, on=curve, how="left")
    summary["onset_lc"] = summary["onset_lc"].astype("Int64")
    return summary.sort_values(keys, key=lambda c: c.map(KIND_ORDER) if c.name == "kind" else c).reset_index(drop=True)


def transferability_matrix(transferability: pd.DataFrame, arch: str, split: str = "test") -> pd.DataFrame:
    """Figure 3's matrix for one architecture: rows sources, columns targets, each cell the mean
    over l_c of the normalised gap of that transfer (the diagonal: the self-transfer control's)."""
    rows = transferability[(transferability["arch"] == arch) & (transferability["split"] == split)]
    tasks = sorted(set(rows["source"]) | set(rows["target"]))
    cells = rows.groupby(["source", "target"])["normalised_gap"].mean()
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


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4f")


COST_KEYS = ["experiment", "arch", "kind", "device_name"]


def cost_table(metrics_files: list[str | Path]) -> pd.DataFrame:
    """Device time and efficiency of the training jobs, per (experiment, architecture, kind,
    device) and in all: jobs, device-hours (the sum of their training time), mean examples
    per second, mean MFU, the largest peak memory. Jobs trained before costs were recorded
    count in ``jobs_without_cost``."""
    rows = []
    for path in metrics_files:
        m = read_json(path)
        c = m.get("cost") or {}
        rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"],
                     "device_name": c.get("device_name", "unknown"), "train_seconds": c.get("train_seconds"),
                     "examples_per_s": c.get("examples_per_s"), "mfu": c.get("mfu"),
                     "peak_memory_mb": c.get("peak_memory_mb"), "has_cost": bool(c)})
    jobs = pd.DataFrame(rows, columns=COST_KEYS + ["train_seconds", "examples_per_s", "mfu", "peak_memory_mb",
                                                  "has_cost"])
    for column in ("train_seconds", "examples_per_s", "mfu", "peak_memory_mb"):
        jobs[column] = pd.to_numeric(jobs[column])

    def totals(group: pd.DataFrame) -> pd.Series:
        return pd.Series({"jobs": len(group), "jobs_without_cost": int((~group["has_cost"]).sum()),
                          "device_hours": group["train_seconds"].sum() / 3600,
                          "mean_examples_per_s": group["examples_per_s"].mean(), "mean_mfu": group["mfu"].mean(),
                          "max_peak_memory_mb": group["peak_memory_mb"].max()})

    table = jobs.groupby(COST_KEYS, sort=True).apply(totals, include_groups=False).reset_index()
    # the grid's total: jobs and device time (rates of images and of speech frames do not add up)
    everything = totals(jobs).to_frame().T.assign(experiment="all", arch="all", kind="all", device_name="all",
                                                  mean_examples_per_s=float("nan"), mean_mfu=float("nan"))
    table = pd.concat([table, everything[table.columns]], ignore_index=True)
    numbers = ["device_hours", "mean_examples_per_s", "mean_mfu", "max_peak_memory_mb"]
    return table.astype({"jobs": int, "jobs_without_cost": int, **{column: float for column in numbers}})


def lc_labels(lc_values: list[int]) -> list[str]:
    """The paper's x-axis: 0, Block 1, Blocks 2&3, ... (the groups each step adds)."""
    labels, previous = [], 0
    for lc in sorted(lc_values):
        if lc == 0:
            labels.append("0")
        elif lc == previous + 1:
            labels.append(f"Block {lc}")
        elif lc == previous + 2:
            labels.append(f"Blocks {previous + 1}&{lc}")
        else:
            labels.append(f"Blocks {previous + 1}–{lc}")
        previous = lc
    return labels


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    return sns


def _curve(rows: pd.DataFrame, lcs: list[int]) -> pd.DataFrame:
    """Mean over runs per l_c, with the 95 % interval's half-width (NaN for one run)."""
    curve = rows.groupby("lc")["value"].agg(["mean", "std", "count"]).reindex(lcs).dropna(subset=["mean"])
    curve["ci95"] = [ci95(std, int(n)) for std, n in zip(curve["std"], curve["count"])]
    return curve


# How Figure 1 and 2 draw each family's transfers and controls: (line style, marker, label);
# the colour says the split. With one family the labels name no family, as before families existed.
CURVE_STYLES = {("copy", "transfer"): ("-", "o", "transfer"), ("copy", "control"): (":", "s", "self-transfer control"),
                ("reinit", "transfer"): ("-.", "^", "transfer, upper groups re-initialised"),
                ("reinit", "control"): ((0, (1, 3)), "v", "self-transfer control, upper groups re-initialised")}


def _family(rows: pd.DataFrame) -> pd.Series:
    """The family of each row, ``copy`` where the table has none (tables written before families)."""
    if "upper_groups" not in rows:
        return pd.Series("copy", index=rows.index)
    return rows["upper_groups"].astype("object").where(rows["upper_groups"].notna(), "copy")


def figure_transfer(table: pd.DataFrame, experiment: str, lc_sets: dict[str, list[int]], title: str,
                    png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    """One panel per (arch, source → target): the metric against l_c for validation and test
    (mean over seeds × folds, shaded: its 95 % interval where there are several runs), for each
    family of transfers (``copy``: solid; ``reinit``, the groups above l_c re-initialised:
    dash-dotted) with the target's self-transfer control of the same family (dotted, densely
    or loosely), and the target's primary model as dashed lines, in the colour of the split."""
    sns = _style()
    import matplotlib.pyplot as plt

    rows = table[table["experiment"] == experiment]
    rows = rows.assign(upper_groups=_family(rows))
    data = rows[rows["kind"] == "transfer"]
    controls = rows[rows["kind"] == "control"]
    families = [f for f in FAMILIES if f in set(rows.loc[rows["kind"] != "primary", "upper_groups"])]
    panels = data[["arch", "source", "target", "metric"]].drop_duplicates().sort_values(["arch", "source", "target"])
    columns = 2 if len(panels) == 4 else min(3, max(len(panels), 1))
    n_rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.2 * columns, 3.2 * n_rows), squeeze=False)
    colours = dict(zip(["validation", "test"], sns.color_palette(n_colors=2)))
    for ax, (_, panel) in zip(axes.flat, panels.iterrows()):
        lcs = sorted(lc_sets[panel["arch"]])
        cell = data[(data["arch"] == panel["arch"]) & (data["source"] == panel["source"]) & (data["target"] == panel["target"])]
        control = controls[(controls["arch"] == panel["arch"]) & (controls["target"] == panel["target"])]
        for split, colour in colours.items():
            for family in families:
                for kind, rows_ in (("transfer", cell), ("control", control)):
                    curve = _curve(rows_[(rows_["split"] == split) & (rows_["upper_groups"] == family)], lcs)
                    if curve.empty:
                        continue
                    style, marker, label = CURVE_STYLES[family, kind]
                    if len(families) == 1:
                        label = CURVE_STYLES["copy", kind][2]
                    positions = [lcs.index(lc) for lc in curve.index]
                    ax.plot(positions, curve["mean"], marker=marker, markersize=4, linestyle=style, color=colour,
                            label=f"{label}, {split}")
                    if curve["ci95"].notna().any():  # clipped to the metric's range: few runs give wide intervals
                        upper = curve["mean"] + curve["ci95"]
                        ax.fill_between(positions, (curve["mean"] - curve["ci95"]).clip(lower=0),
                                        upper if panel["metric"] == "per" else upper.clip(upper=100),
                                        color=colour, alpha=0.15 if kind == "transfer" else 0.07)
            baseline = cell[cell["split"] == split]["primary_value"].mean()
            ax.axhline(baseline, color=colour, linestyle="--", linewidth=1, label=f"target's primary model, {split}")
        ax.set_xticks(range(len(lcs)), lc_labels(lcs), rotation=20)
        ax.set_title(f"{panel['source']} → {panel['target']} ({panel['arch']})")
        ax.set_xlabel("layers held constant (l_c)")
        ax.set_ylabel(METRICS[panel["metric"]])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend_columns = 3 if len(families) == 1 else 2
    fig.legend(handles, labels, loc="lower center", ncol=legend_columns, frameon=False)
    fig.suptitle(title)
    legend_rows = -(-len(labels) // legend_columns)
    fig.tight_layout(rect=(0, (0.3 + 0.2 * legend_rows) / fig.get_figheight(), 1, 0.97))  # ~0.2 in a legend row
    _save(fig, png, pdf, dpi)


def figure_transferability(transferability: pd.DataFrame, title: str, png: str | Path, pdf: str | Path,
                           dpi: int = 150, split: str = "test") -> None:
    """Figure 3: per architecture, the transferability matrix (rows sources, columns targets,
    cells the mean normalised gap over l_c; the diagonal the self-transfer control) and its
    asymmetry (A → B minus B → A)."""
    sns = _style()
    import matplotlib.pyplot as plt

    archs = sorted(transferability["arch"].unique())
    fig, axes = plt.subplots(max(1, len(archs)), 2, figsize=(9.5, 3.6 * max(1, len(archs))), squeeze=False)
    for (left, right), arch in zip(axes, archs):
        matrix = transferability_matrix(transferability, arch, split)
        experiment = transferability.loc[transferability["arch"] == arch, "experiment"].iloc[0]
        for ax, values, name in ((left, matrix, "mean normalised gap"), (right, asymmetry(matrix), "asymmetry")):
            limit = np.nanmax(np.abs(values.to_numpy())) if np.isfinite(values.to_numpy()).any() else 1.0
            with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                sns.heatmap(values, ax=ax, cmap="vlag", center=0, vmin=-limit, vmax=limit, annot=True, fmt=".2f",
                            square=True, linewidths=0.5, cbar_kws={"shrink": 0.8}, mask=values.isna())
            ax.set_title(f"{arch} ({experiment}): {name}")
            ax.grid(False)
            ax.set_xlabel("target")
            ax.set_ylabel("source")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    _save(fig, png, pdf, dpi)


def _save(fig, png: str | Path, pdf: str | Path, dpi: int) -> None:
    import matplotlib.pyplot as plt

    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:], dpi=dpi)
    plt.close(fig)


def curves_table(metrics_files: list[str | Path]) -> pd.DataFrame:
    """Every training job's per-epoch history in long form: identity, epoch, phase, the
    validation score (the model-selection metric) and the training loss."""
    rows = []
    for path in metrics_files:
        m = read_json(path)
        for entry in m.get("history", []):
            rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"], "source": m["source"],
                         "target": m["target"], "seed": int(m.get("seed", 0)), "fold": int(m["fold"]),
                         "lc": int(m["lc"]), "epoch": int(entry["epoch"]), "phase": entry.get("phase", "train"),
                         "train_loss": entry.get("train_loss"), "score": entry.get("score")})
    return pd.DataFrame(rows, columns=["experiment", "arch", "kind", "source", "target", "seed", "fold", "lc",
                                       "epoch", "phase", "train_loss", "score"])


def figure_curves(curves: pd.DataFrame, title: str, png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    """Training curves, one row per architecture: the validation score of each primary model
    against epoch (a line per task and fold), and the transfers of one pair (the first source →
    target of the architecture, its first fold and seed), a line per l_c."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = curves[curves["phase"] == "train"]
    archs = sorted(epochs["arch"].unique())
    fig, axes = plt.subplots(max(1, len(archs)), 2, figsize=(9.5, 3.0 * max(1, len(archs))), squeeze=False)
    for (left, right), arch in zip(axes, archs):
        rows = epochs[(epochs["arch"] == arch) & (epochs["seed"] == epochs["seed"].min())]
        primaries = rows[rows["kind"] == "primary"].assign(
            model=lambda d: d["target"] + np.where(d["fold"] > 0, " fold " + d["fold"].astype(str), ""))
        sns.lineplot(primaries, x="epoch", y="score", hue="model", marker="o", ax=left)
        left.set_title(f"{arch}: primary models")
        transfers = rows[rows["kind"] == "transfer"]
        if not transfers.empty:
            first = transfers.sort_values(["source", "target", "fold"]).iloc[0]
            pair = transfers[(transfers["source"] == first["source"]) & (transfers["target"] == first["target"])
                             & (transfers["fold"] == first["fold"])]
            sns.lineplot(pair.assign(l_c=pair["lc"].astype(str)), x="epoch", y="score", hue="l_c", marker="o",
                         ax=right, palette="viridis")
            right.set_title(f"{arch}: {first['source']} → {first['target']}"
                            + (f" (fold {first['fold']})" if first["fold"] else ""))
        else:
            right.set_visible(False)
        for ax in (left, right):
            ax.set_ylabel("validation score (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
            if ax.get_legend() is not None:
                ax.legend(fontsize="small", title_fontsize="small", title=ax.get_legend().get_title().get_text())
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    _save(fig, png, pdf, dpi)


def per_speaker_table(files: list[str | Path], labels: list[dict]) -> pd.DataFrame:
    """The per-speaker PER files of several decodes in one table, each row prefixed by its
    decode's label (e.g. architecture, seed, split)."""
    tables = [pd.read_csv(path, sep="\t").assign(**label) for path, label in zip(files, labels)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    front = list(labels[0]) if labels else []
    return table[front + [c for c in table.columns if c not in front]]
