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
from gradual_transfer.statistics import MIN_UNITS_FOR_INTERVAL
from gradual_transfer.tables import HIGHER_IS_BETTER, METRICS, asymmetry, summary_table, transferability_matrix, with_family


def lc_labels(lc_values: list[int], groups: list[str]) -> list[str]:
    """The one x-axis convention of every figure: the l_c number, and under it the layer groups
    it holds constant, by the architecture's own names (``0 / none``, ``3 / conv0–transition1``)."""
    labels = []
    for lc in sorted(lc_values):
        frozen = groups[:lc]
        labels.append(f"{lc}\n" + ("none" if not frozen else frozen[0] if len(frozen) == 1
                                    else f"{frozen[0]}–{frozen[-1]}"))
    return labels


LC_AXIS = "l_c (layer groups held constant)"
# The validation score each task selects its model by (training curves), by the task's metric.
SELECTION_SCORES = {"accuracy": "top-1 accuracy (%)", "per": "frame accuracy (%)", "ue": "unweighted accuracy (%)"}
LOG_AXIS_RATIO = 5  # a metric whose drawn values span more than this factor gets a log y-axis


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    return sns


# How Figure 1 and 2 draw each family's transfers and controls: (line style, marker, label);
# the colour says the split. With one family the labels name no family, as before families existed.
CURVE_STYLES = {("copy", "transfer"): ("-", "o", "transfer"), ("copy", "control"): (":", "s", "self-transfer control"),
                ("reinit", "transfer"): ("-.", "^", "transfer, upper groups re-initialised"),
                ("reinit", "control"): ((0, (1, 3)), "v", "self-transfer control, upper groups re-initialised")}


def _log_axis(metric: str, values: pd.Series) -> bool:
    """Whether an error metric's drawn values span more than LOG_AXIS_RATIO (e.g. SER → ASR: a
    PER of ~90 % at full freezing beside 2–15 % elsewhere), so a linear axis would squeeze the
    rest. Accuracies stay linear (their informative end is near 100, where a log axis squeezes),
    as does any metric with a value at 0, which a log axis cannot show."""
    values = values[np.isfinite(values)]
    return (metric not in HIGHER_IS_BETTER and len(values) > 0 and values.min() > 0
            and values.max() / values.min() > LOG_AXIS_RATIO)


def figure_transfer(table: pd.DataFrame, experiment: str, lc_sets: dict[str, list[int]],
                    groups: dict[str, list[str]], title: str, png: str | Path, pdf: str | Path,
                    dpi: int = 150) -> None:
    """One row of panels per architecture, one panel per source → target: the metric against
    l_c for validation and test, mean over units of replication as :func:`summary_table` counts
    them (folds, each the mean of its seeds, where the runs have folds; else seeds), for each
    family of transfers (``copy``: solid; ``reinit``: dash-dotted) with the target's
    self-transfer control of the same family (dotted), and the target's primary model (dashed),
    in the colour of the split. A band (the 95 % interval of the mean) is drawn only at l_c where
    the mean rests on at least MIN_UNITS_FOR_INTERVAL units; each panel's title says how many.
    Panels of one metric share their y-axis (logarithmic where the values span more than
    LOG_AXIS_RATIO); the legend sits below every panel."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    summary = summary_table(table[table["experiment"] == experiment])
    summary = summary[summary["kind"] != "primary"]
    transfers, controls = summary[summary["kind"] == "transfer"], summary[summary["kind"] == "control"]
    families = [f for f in FAMILIES if f in set(summary["upper_groups"])]
    pairs = (transfers[["metric", "source", "target"]].drop_duplicates().sort_values(["metric", "source", "target"])
             .itertuples(index=False))
    pairs = list(pairs)
    archs = sorted(transfers["arch"].unique())
    columns = max(1, min(3, len(pairs)))
    rows_per_arch = max(1, -(-len(pairs) // columns))
    n_rows = max(1, len(archs)) * rows_per_arch
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.2 * columns, 2.7 * n_rows + 0.9), squeeze=False,
                             layout="constrained")
    colours = dict(zip(["validation", "test"], sns.color_palette(n_colors=2)))
    axes_of_metric: dict[str, list] = {}
    banded = False
    for a, arch in enumerate(archs):
        lcs = sorted(lc_sets[arch])
        for i, (metric, source, target) in enumerate(pairs):
            ax = axes[a * rows_per_arch + i // columns, i % columns]
            cell = transfers[(transfers["arch"] == arch) & (transfers["source"] == source)
                             & (transfers["target"] == target)]
            if cell.empty:
                ax.set_visible(False)
                continue
            if metric in axes_of_metric:
                ax.sharey(axes_of_metric[metric][0])
            axes_of_metric.setdefault(metric, []).append(ax)
            control = controls[(controls["arch"] == arch) & (controls["target"] == target)]
            for split, colour in colours.items():
                for family in families:
                    for kind, rows in (("transfer", cell), ("control", control)):
                        curve = rows[(rows["split"] == split) & (rows["upper_groups"] == family)].sort_values("lc")
                        if curve.empty:
                            continue
                        style, marker, label = CURVE_STYLES[family, kind]
                        if len(families) == 1:
                            label = CURVE_STYLES["copy", kind][2]
                        x = curve["lc"].astype(float)
                        ax.plot(x, curve["mean"], marker=marker, markersize=4, linestyle=style, color=colour,
                                label=f"{label}, {split}")
                        enough = (curve["n_units"] >= MIN_UNITS_FOR_INTERVAL) & curve["ci95"].notna()
                        if enough.any():
                            banded = True
                            ax.fill_between(x, curve["mean"] - curve["ci95"], curve["mean"] + curve["ci95"],
                                            where=enough.to_numpy(), color=colour,
                                            alpha=0.15 if kind == "transfer" else 0.07, linewidth=0)
                primary = cell.loc[cell["split"] == split, "primary_mean"].mean()
                ax.axhline(primary, color=colour, linestyle="--", linewidth=1,
                           label=f"target's primary model, {split}")
            units = cell.iloc[0]["unit"]
            n_units = int(cell["n_units"].max())
            ax.set_title(f"{arch}: {source} → {target}\n(mean over {n_units} {units}{'s' if n_units != 1 else ''})")
            ax.set_xticks(lcs, lc_labels(lcs, groups[arch]), fontsize="small")
            ax.set_xlabel(LC_AXIS)
            ax.set_ylabel(METRICS[metric])
    for metric, shared in axes_of_metric.items():
        drawn = summary.loc[summary["metric"] == metric, ["mean", "primary_mean"]].to_numpy().ravel()
        if _log_axis(metric, pd.Series(drawn, dtype=float)):
            shared[0].set_yscale("log")  # shared: every panel of the metric follows
            shared[0].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 10, not 10¹
            shared[0].yaxis.set_minor_formatter(FuncFormatter(
                lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
            for ax in shared:
                ax.set_ylabel(f"{METRICS[metric]}, log scale")
    for ax in axes.flat:
        if not ax.get_visible() or not ax.has_data():
            ax.set_visible(False)
    handles, labels = {}, {}
    for ax in axes.flat:
        if ax.get_visible():
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
    if banded:
        handles[f"95 % interval of the mean (≥ {MIN_UNITS_FOR_INTERVAL} units)"] = Patch(color="grey", alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncol=max(1, min(columns, 3 if len(families) == 1 else 2, len(handles))), frameon=False,
               fontsize="small")  # no wider than the panels
    fig.suptitle(title)
    _save(fig, png, pdf, dpi)


GAP_LIMIT = 1.0  # colour scale of Figure 3: ±1, all of the target primary's headroom, alike in every panel


def figure_transferability(transferability: pd.DataFrame, title: str, png: str | Path, pdf: str | Path,
                           dpi: int = 150, split: str = "test") -> None:
    """Figure 3: per architecture and family (``copy``, ``reinit``), the transferability matrix
    (rows sources, columns targets, cells the normalised gap, the fraction of the target
    primary's headroom over a trivial predictor that the transfer loses, averaged over relative
    depth l_c / L_H so that architectures of different depths compare; the outlined diagonal is
    the self-transfer control) and its asymmetry (A → B minus B → A), once per unordered pair:
    the upper triangle. Every panel has the same colour scale, ±GAP_LIMIT (beyond it: saturated;
    the printed number is exact), so no one cell washes out the others."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = with_family(transferability)
    panels = rows[["arch", "upper_groups", "experiment"]].drop_duplicates().sort_values(["arch", "upper_groups"])
    fig, axes = plt.subplots(max(1, len(panels)), 2, figsize=(9.5, 3.8 * max(1, len(panels))), squeeze=False,
                             layout="constrained")
    for (left, right), (_, panel) in zip(axes, panels.iterrows()):
        matrix = transferability_matrix(rows, panel["arch"], split, panel["upper_groups"])
        mine = rows[(rows["arch"] == panel["arch"]) & (rows["split"] == split)]
        no_headroom = sorted(set(mine.loc[mine["trivial_error"] <= mine["primary_error"], "target"]))
        once = asymmetry(matrix)
        once = once.where(np.triu(np.ones(once.shape, dtype=bool), k=1))  # each unordered pair once
        for ax, values, name in ((left, matrix, "normalised gap (diagonal: self-transfer control)"),
                                 (right, once, "asymmetry: row → column minus column → row")):
            with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                sns.heatmap(values, ax=ax, cmap="vlag", center=0, vmin=-GAP_LIMIT, vmax=GAP_LIMIT, annot=True,
                            fmt=".2f", square=True, linewidths=0.5, cbar_kws={"shrink": 0.8}, mask=values.isna())
            ax.set_title(f"{panel['arch']}, {panel['upper_groups']} ({panel['experiment']}):\n{name}", fontsize="small")
            ax.grid(False)
            # an empty column: the target's primary model does no better than a trivial predictor
            ax.set_xlabel("target task" + (f"\n(no headroom over a trivial predictor: {', '.join(no_headroom)})"
                                           if no_headroom else ""))
            ax.set_ylabel("source task")
        for k in range(len(matrix)):  # the diagonal is the control, not a transfer: outlined
            left.add_patch(Rectangle((k, k), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
    fig.suptitle(title)
    _save(fig, png, pdf, dpi)


def _save(fig, png: str | Path, pdf: str | Path, dpi: int) -> None:
    import matplotlib.pyplot as plt

    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:], dpi=dpi)
    plt.close(fig)


def figure_curves(curves: pd.DataFrame, task_metrics: dict[str, str], groups: dict[str, list[str]], title: str,
                  png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    """Training curves, one row per architecture: the validation score of its primary models
    against epoch, one panel per score (the score each task selects its model by:
    SELECTION_SCORES of the task's metric), a line per task and fold; and the transfers of one
    pair (the architecture's first source → target, first fold), a line per l_c named as on
    every figure's axis. First seed only."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = curves[curves["phase"] == "train"]
    epochs = epochs.assign(score_name=epochs["target"].map(lambda t: SELECTION_SCORES[task_metrics[t]]))
    archs = sorted(epochs["arch"].unique())
    scores_of = {arch: sorted(epochs.loc[(epochs["arch"] == arch) & (epochs["kind"] == "primary"), "score_name"]
                              .unique()) for arch in archs}
    columns = max([len(s) for s in scores_of.values()] + [1]) + 1
    fig, axes = plt.subplots(max(1, len(archs)), columns, figsize=(3.6 * columns, 3.0 * max(1, len(archs))),
                             squeeze=False, layout="constrained")
    for row, arch in zip(axes, archs):
        rows = epochs[(epochs["arch"] == arch) & (epochs["seed"] == epochs["seed"].min())]
        primaries = rows[rows["kind"] == "primary"].assign(
            model=lambda d: d["target"] + np.where(d["fold"] > 0, " fold " + d["fold"].astype(str), ""))
        for ax, score in zip(row, scores_of[arch]):
            sns.lineplot(primaries[primaries["score_name"] == score], x="epoch", y="score", hue="model", marker="o",
                         ax=ax)
            ax.set_title(f"{arch}: primary models", fontsize="small")
            ax.set_ylabel(f"validation {score}")
        for ax in row[len(scores_of[arch]):-1]:
            ax.set_visible(False)
        right = row[-1]
        transfers = rows[rows["kind"] == "transfer"]
        if not transfers.empty:
            first = transfers.sort_values(["source", "target", "fold"]).iloc[0]
            pair = transfers[(transfers["source"] == first["source"]) & (transfers["target"] == first["target"])
                             & (transfers["fold"] == first["fold"])]
            names = dict(zip(sorted(pair["lc"].unique()), lc_labels(sorted(pair["lc"].unique()), groups[arch])))
            pair = pair.assign(l_c=pair["lc"].map(lambda lc: names[lc].replace("\n", ": ")))
            sns.lineplot(pair, x="epoch", y="score", hue="l_c", marker="o", ax=right, palette="viridis")
            right.set_title(f"{arch}: {first['source']} → {first['target']}"
                            + (f" (fold {first['fold']})" if first["fold"] else ""), fontsize="small")
            right.set_ylabel(f"validation {first['score_name']}")
        else:
            right.set_visible(False)
        for ax in row:
            epochs_drawn = sorted({x for line in ax.get_lines() for x in line.get_xdata()})
            if len(epochs_drawn) <= 10:
                ax.set_xticks(epochs_drawn)  # whole epochs, also where a line has one point
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.get_legend() is not None:
                ax.legend(fontsize="x-small", title_fontsize="x-small", title=ax.get_legend().get_title().get_text(),
                          loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)  # beside, not over, the lines
    fig.suptitle(title)
    _save(fig, png, pdf, dpi)
