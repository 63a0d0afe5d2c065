"""The figures of a run, drawn from its tables (:mod:`gradual_transfer.tables`): Figures 1 and 2
(the metric against l_c per pair, both families, controls and primaries), Figure 3 (the
transferability matrix and its asymmetry) and the training curves. Each figure is written as PNG
and PDF, atomically."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.grid import FAMILIES
from gradual_transfer.io import atomic_path
from gradual_transfer.statistics import ci95
from gradual_transfer.tables import METRICS, asymmetry, transferability_matrix, with_family


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
    """Figure 3: per architecture and family (``copy``, ``reinit``), the transferability matrix
    (rows sources, columns targets, cells the normalised gap, the fraction of the target
    primary's headroom over a trivial predictor that the transfer loses, averaged over relative
    depth; the diagonal the self-transfer control) and its asymmetry (A → B minus B → A)."""
    sns = _style()
    import matplotlib.pyplot as plt

    rows = with_family(transferability)
    panels = rows[["arch", "upper_groups", "experiment"]].drop_duplicates().sort_values(["arch", "upper_groups"])
    fig, axes = plt.subplots(max(1, len(panels)), 2, figsize=(9.5, 3.6 * max(1, len(panels))), squeeze=False)
    for (left, right), (_, panel) in zip(axes, panels.iterrows()):
        matrix = transferability_matrix(rows, panel["arch"], split, panel["upper_groups"])
        mine = rows[(rows["arch"] == panel["arch"]) & (rows["split"] == split)]
        no_headroom = sorted(set(mine.loc[mine["trivial_error"] <= mine["primary_error"], "target"]))
        for ax, values, name in ((left, matrix, "normalised gap"), (right, asymmetry(matrix), "asymmetry")):
            limit = np.nanmax(np.abs(values.to_numpy())) if np.isfinite(values.to_numpy()).any() else 1.0
            with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                sns.heatmap(values, ax=ax, cmap="vlag", center=0, vmin=-limit, vmax=limit, annot=True, fmt=".2f",
                            square=True, linewidths=0.5, cbar_kws={"shrink": 0.8}, mask=values.isna())
            ax.set_title(f"{panel['arch']}, {panel['upper_groups']} ({panel['experiment']}): {name}")
            ax.grid(False)
            # an empty column: the target's primary model does no better than a trivial predictor
            ax.set_xlabel("target" + (f"\n(no headroom over a trivial predictor: {', '.join(no_headroom)})"
                                      if no_headroom else ""))
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
