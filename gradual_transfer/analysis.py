"""Aggregation of every model's metrics into one long-form table, and the figures.

The table has one row per (model, split, metric): ``experiment, arch, kind, source, target,
fold, lc, split, metric, value, primary_value``, where ``primary_value`` is the target's own
primary model on the same fold, split and metric, so every transfer row carries its baseline
and the table feeds seaborn directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gradual_transfer.io import atomic_path, read_json

COLUMNS = ["experiment", "arch", "kind", "source", "target", "fold", "lc", "split", "metric", "value", "primary_value"]
METRICS = {"accuracy": "top-1 accuracy (%)", "per": "phone error rate (%)", "ue": "unweighted error (%)"}


def results_table(metrics_files: list[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_files:
        m = read_json(path)
        for split in ("validation", "test"):
            for metric in METRICS:
                if metric in m[split]:
                    rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"],
                                 "source": m["source"], "target": m["target"], "fold": int(m["fold"]),
                                 "lc": int(m["lc"]) if m["kind"] == "transfer" else None,
                                 "split": split, "metric": metric, "value": float(m[split][metric])})
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    table["lc"] = table["lc"].astype("Int64")
    keys = ["experiment", "arch", "target", "fold", "split", "metric"]
    primary = table[table["kind"] == "primary"][keys + ["value"]].rename(columns={"value": "primary_value"})
    table = table.merge(primary, on=keys, how="left")
    # A target without folds (TIMIT, CIFAR, SVHN) has its primary at fold 0, whichever fold
    # the source model came from (SER → ASR transfers carry the SER fold).
    fold0 = primary[primary["fold"] == 0].drop(columns="fold").rename(columns={"primary_value": "fold0"})
    table = table.merge(fold0, on=[k for k in keys if k != "fold"], how="left")
    table["primary_value"] = table["primary_value"].fillna(table.pop("fold0"))
    order = {"primary": 0, "transfer": 1}
    table = table.sort_values(["experiment", "arch", "target", "fold", "kind", "source", "lc", "split", "metric"],
                              key=lambda c: c.map(order) if c.name == "kind" else c).reset_index(drop=True)
    return table[COLUMNS]


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count over folds of every (model setting, split, metric),
    with the mean primary baseline; tasks without folds have a count of 1."""
    keys = ["experiment", "arch", "kind", "source", "target", "lc", "split", "metric"]
    grouped = table.groupby(keys, dropna=False, sort=True)
    summary = grouped["value"].agg(mean="mean", std="std", folds="count").reset_index()
    summary["primary_mean"] = grouped["primary_value"].mean().to_numpy()
    return summary


def write_table(table: pd.DataFrame, parquet: str | Path, tsv: str | Path, summary_tsv: str | Path | None = None) -> None:
    with atomic_path(parquet) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if summary_tsv is not None:
        with atomic_path(summary_tsv) as tmp:
            summary_table(table).to_csv(tmp, sep="\t", index=False, float_format="%.4f")


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


def figure_transfer(table: pd.DataFrame, experiment: str, lc_sets: dict[str, list[int]], title: str,
                    png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    """One panel per (arch, source → target): the metric against l_c for validation and test,
    the target's primary model as dashed lines of the same colours."""
    sns = _style()
    import matplotlib.pyplot as plt

    data = table[(table["experiment"] == experiment) & (table["kind"] == "transfer")]
    panels = data[["arch", "source", "target", "metric"]].drop_duplicates().sort_values(["arch", "source", "target"])
    columns = 2 if len(panels) == 4 else min(3, max(len(panels), 1))
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colours = dict(zip(["validation", "test"], sns.color_palette(n_colors=2)))
    for ax, (_, panel) in zip(axes.flat, panels.iterrows()):
        lcs = sorted(lc_sets[panel["arch"]])
        cell = data[(data["arch"] == panel["arch"]) & (data["source"] == panel["source"]) & (data["target"] == panel["target"])]
        for split, colour in colours.items():
            curve = cell[cell["split"] == split].groupby("lc")["value"].agg(["mean", "std"]).reindex(lcs)
            positions = [lcs.index(lc) for lc in curve.index]
            ax.plot(positions, curve["mean"], marker="o", color=colour, label=f"transfer, {split}")
            if curve["std"].notna().any():
                ax.fill_between(positions, curve["mean"] - curve["std"], curve["mean"] + curve["std"], color=colour, alpha=0.15)
            baseline = cell[cell["split"] == split]["primary_value"].mean()
            ax.axhline(baseline, color=colour, linestyle="--", linewidth=1, label=f"target's primary model, {split}")
        ax.set_xticks(range(len(lcs)), lc_labels(lcs), rotation=20)
        ax.set_title(f"{panel['source']} → {panel['target']} ({panel['arch']})")
        ax.set_xlabel("layers held constant (l_c)")
        ax.set_ylabel(METRICS[panel["metric"]])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:], dpi=dpi)
    plt.close(fig)
