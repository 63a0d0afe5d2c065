"""The figures of a run, drawn from its tables (:mod:`gradual_transfer.tables`): Figures 1 and 2
(the metric against l_c per pair, drawn as Yosinski et al. 2014 drew their Figure 2: every unit
of replication a small point, the mean a line, the colour what was trained, the line and marker
the family), Figure 3 (the transferability matrices, the part beyond the control and the
asymmetry) and the training curves. Each figure is written as PNG and PDF (TrueType fonts),
atomically.

Longer than the library's ~350-line rule of thumb because the figures share one style (colours,
families, l_c ticks, fonts, saving) that splitting them would scatter; the screen's figure, which
shares only the style, is :mod:`gradual_transfer.screen_figures`."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.grid import FAMILIES
from gradual_transfer.io import atomic_path
from gradual_transfer.statistics import MIN_UNITS_FOR_INTERVAL
from gradual_transfer.tables import (HIGHER_IS_BETTER, METRICS, asymmetry, common_depth_span, summary_table,
                                     transferability_matrix, unit_table, with_family)

LC_AXIS = "l_c (layer groups held constant)"
# The validation score each task selects its model by (training curves), by the task's metric.
SELECTION_SCORES = {"accuracy": "top-1 accuracy (%)", "per": "frame accuracy (%)", "ue": "unweighted accuracy (%)"}
LOG_AXIS_RATIO = 5  # a metric whose drawn values span more than this factor gets a log y-axis
# TrueType (Type 42) fonts in PDF and PostScript: matplotlib's default Type 3 fonts are refused by
# many venues' submission systems.
FONT_TYPES = {"pdf.fonttype": 42, "ps.fonttype": 42}


def _style(font_scale: float = 1.0):
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=font_scale, rc=FONT_TYPES)
    return sns


# Figures 1 and 2: the colour says what was trained (Yosinski's baseB, selffer and transfer
# networks), the line and marker say the family, so a panel reads at a glance.
KIND_LABELS = {"transfer": "transfer (source → target)", "control": "self-transfer control (target → target)",
               "primary": "target's primary model (mean)"}
KIND_PALETTE_INDEX = {"transfer": 3, "control": 0}  # the colour-blind palette's vermillion and blue
PRIMARY_COLOUR = "0.15"
FAMILY_STYLES = {"copy": ("-", "o"), "reinit": ("--", "^")}  # (line style, marker)
FAMILY_LABELS = {"copy": "copy (groups above l_c fine-tuned)", "reinit": "reinit (groups above l_c re-initialised)"}
UNIT_OFFSET = 0.07  # horizontal spacing of the series at one l_c, so their points do not hide each other


def _log_axis(metric: str, values: pd.Series) -> bool:
    """Whether an error metric's drawn values span more than LOG_AXIS_RATIO (e.g. SER → ASR: a
    PER of ~90 % at full freezing beside 2–15 % elsewhere), so a linear axis would squeeze the
    rest. Accuracies stay linear (their informative end is near 100, where a log axis squeezes),
    as does any metric with a value at 0, which a log axis cannot show."""
    values = values[np.isfinite(values)]
    return (metric not in HIGHER_IS_BETTER and len(values) > 0 and values.min() > 0
            and values.max() / values.min() > LOG_AXIS_RATIO)


def _panels(transfers: pd.DataFrame, families: list[str], comparable: dict[str, bool]) -> list[tuple]:
    """The panels of one architecture: (metric, source, target, families drawn) per pair, both
    families in one panel only where their budgets into the target match (`comparable`), else a
    panel per family, so that no panel invites a contrast the design cannot make."""
    panels = []
    pairs = transfers[["metric", "source", "target"]].drop_duplicates().sort_values(["metric", "source", "target"])
    for metric, source, target in pairs.itertuples(index=False):
        drawn = [f for f in families if f in set(transfers.loc[(transfers["source"] == source)
                                                               & (transfers["target"] == target), "upper_groups"])]
        if len(drawn) > 1 and not comparable.get(target, False):
            panels += [(metric, source, target, [family]) for family in drawn]
        else:
            panels.append((metric, source, target, drawn))
    return panels


def figure_transfer(table: pd.DataFrame, experiment: str, lc_sets: dict[str, list[int]], title: str,
                    png: str | Path, pdf: str | Path, dpi: int = 150, split: str = "test",
                    comparable: dict[str, bool] | None = None) -> None:
    """Figures 1 and 2 as Yosinski et al. (2014, Figure 2) drew theirs, on one split (the test
    split; the validation split chose each model and is drawn in a supplementary figure): per
    architecture, a panel per source → target with the metric against l_c. Every unit of
    replication (a seed, or a fold with its seeds averaged, as :func:`summary_table` counts
    them) is a small point, the mean over units a line through them. The colour says what was
    trained (KIND_LABELS: the transfer, its target's self-transfer control, and the target's
    primary model as a dashed reference line); the line style and marker say the family
    (FAMILY_STYLES). Both families share a panel only where `comparable` says their budgets into
    the target match (:func:`gradual_transfer.claims.family_contrast`); else each has its own.
    A band (the 95 % interval of the mean) is drawn only at l_c whose mean rests on at least
    MIN_UNITS_FOR_INTERVAL units. The l_c ticks are evenly spaced and carry the numbers (the
    groups each holds constant are listed in the caption). Panels of one metric share their
    y-axis (logarithmic where the values span more than LOG_AXIS_RATIO); one legend below."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    comparable = comparable or {}
    runs = table[(table["experiment"] == experiment) & (table["split"] == split)]
    summary = summary_table(runs)
    units = unit_table(runs)
    summary, units = (frame[frame["kind"] != "primary"] for frame in (summary, units))
    transfers = summary[summary["kind"] == "transfer"]
    families = [f for f in FAMILIES if f in set(summary["upper_groups"].dropna())]
    archs = sorted(transfers["arch"].unique())
    panels_of = {arch: _panels(transfers[transfers["arch"] == arch], families, comparable) for arch in archs}
    split_families = any(len(p[3]) < len(families) for panels in panels_of.values() for p in panels)
    columns = max(1, min(4 if split_families else 3, max([len(p) for p in panels_of.values()] + [1])))
    rows_of = {arch: -(-len(panels) // columns) for arch, panels in panels_of.items()}
    n_rows = max(1, sum(rows_of.values()))
    fig = plt.figure(figsize=(2.7 * columns, 2.45 * n_rows + 0.35 * len(archs) + 1.1), layout="constrained")
    # a row of panels per architecture, titled once by its name
    subfigures = fig.subfigures(max(1, len(archs)), 1, squeeze=False,
                                height_ratios=[rows_of[arch] for arch in archs] or None)[:, 0]
    axes_of_arch = {arch: subfig.subplots(rows_of[arch], columns, squeeze=False)
                    for arch, subfig in zip(archs, subfigures)}
    palette = sns.color_palette("colorblind")
    colours = {kind: palette[i] for kind, i in KIND_PALETTE_INDEX.items()}
    axes_of_metric: dict[str, list] = {}
    drawn_values: dict[str, list] = {}
    banded, kinds_drawn, unit_names = False, set(), set()
    for arch, subfig in zip(archs, subfigures):
        lcs = sorted(lc_sets[arch])
        position = {lc: i for i, lc in enumerate(lcs)}
        axes = axes_of_arch[arch]
        subfig.suptitle(arch, fontsize="large")
        for i, (metric, source, target, panel_families) in enumerate(panels_of[arch]):
            ax = axes[i // columns, i % columns]
            if metric in axes_of_metric:
                ax.sharey(axes_of_metric[metric][0])
            axes_of_metric.setdefault(metric, []).append(ax)
            series = [(family, kind) for family in panel_families for kind in ("control", "transfer")]
            n_units = set()
            for k, (family, kind) in enumerate(series):
                where = ((summary["arch"] == arch) & (summary["upper_groups"] == family) & (summary["kind"] == kind)
                         & (summary["target"] == target) & (summary["source"] == (source if kind == "transfer"
                                                                                   else target)))
                curve = summary[where].sort_values("lc")
                if curve.empty:
                    continue
                mine = units[(units["arch"] == arch) & (units["upper_groups"] == family) & (units["kind"] == kind)
                             & (units["target"] == target) & (units["source"] == curve["source"].iloc[0])]
                offset = (k - (len(series) - 1) / 2) * UNIT_OFFSET
                style, marker = FAMILY_STYLES[family]
                x = curve["lc"].map(position).astype(float) + offset
                # gids name what each line is, for the tests and for editing the SVG or PDF by hand
                ax.plot(x, curve["mean"], linestyle=style, color=colours[kind], linewidth=1.3, zorder=3,
                        gid=f"{family} {kind} mean")
                ax.plot(mine["lc"].map(position).astype(float) + offset, mine["value"], linestyle="none",
                        marker=marker, markersize=3.5, markeredgewidth=0, alpha=0.85, color=colours[kind], zorder=4,
                        gid=f"{family} {kind} units")
                enough = (curve["n_units"] >= MIN_UNITS_FOR_INTERVAL) & curve["ci95"].notna()
                if enough.any():
                    banded = True
                    ax.fill_between(x, curve["mean"] - curve["ci95"], curve["mean"] + curve["ci95"],
                                    where=enough.to_numpy(), color=colours[kind], alpha=0.15, linewidth=0)
                kinds_drawn.add(kind)
                n_units |= set(curve["n_units"])
                unit_names.add(curve["unit"].iloc[0])
                drawn_values.setdefault(metric, []).extend(mine["value"].tolist() + curve["mean"].tolist())
            cell = transfers[(transfers["arch"] == arch) & (transfers["source"] == source)
                             & (transfers["target"] == target)]
            primary = cell["primary_mean"].mean()
            ax.axhline(primary, color=PRIMARY_COLOUR, linestyle=(0, (4, 2)), linewidth=1, zorder=2, gid="primary mean")
            drawn_values.setdefault(metric, []).append(primary)
            unit = cell["unit"].iloc[0]
            counts = f"{min(n_units)}–{max(n_units)}" if len(n_units) > 1 else f"{max(n_units, default=0)}"
            family_note = f" ({panel_families[0]})" if len(panel_families) == 1 and len(families) > 1 else ""
            ax.set_title(f"{source} → {target}{family_note}\n{counts} {unit}"
                         f"{'s' if max(n_units, default=0) != 1 else ''} per l_c")
            ax.set_xticks(range(len(lcs)), [str(lc) for lc in lcs])
            ax.set_xlim(-0.5, len(lcs) - 0.5)
            ax.set_xlabel(LC_AXIS)
            left_metric = panels_of[arch][i - 1][0] if i % columns else None
            ax.set_ylabel(f"{METRICS[metric]}, {split}" if metric != left_metric else "")  # once per row and metric
        for ax in axes.flat[len(panels_of[arch]):]:
            ax.set_visible(False)  # the end of an architecture's last row
    for metric, shared in axes_of_metric.items():
        if _log_axis(metric, pd.Series(drawn_values.get(metric, []), dtype=float)):
            shared[0].set_yscale("log")  # shared: every panel of the metric follows
            shared[0].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 10, not 10¹
            shared[0].yaxis.set_minor_formatter(FuncFormatter(
                lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
            for ax in shared:
                if ax.get_ylabel():
                    ax.set_ylabel(f"{METRICS[metric]}, {split}, log scale")
    handles = [Line2D([], [], color=colours[kind], linewidth=1.5, label=KIND_LABELS[kind])
               for kind in ("transfer", "control") if kind in kinds_drawn]
    handles.append(Line2D([], [], color=PRIMARY_COLOUR, linestyle=(0, (4, 2)), linewidth=1,
                          label=KIND_LABELS["primary"]))
    handles += [Line2D([], [], color="0.35", linestyle=FAMILY_STYLES[f][0], marker=FAMILY_STYLES[f][1],
                       markersize=3.5, label=FAMILY_LABELS[f]) for f in families]
    handles.append(Line2D([], [], color="0.35", linestyle="none", marker="o", markersize=3.5,
                          label=f"point: one {' or '.join(sorted(unit_names)) or 'unit'}; line: their mean"))
    if banded:
        handles.append(Patch(color="grey", alpha=0.3,
                             label=f"95 % interval of the mean (from ≥ {MIN_UNITS_FOR_INTERVAL} units)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=max(1, min(columns, 3, len(handles))),
               frameon=False, fontsize="small")
    supplementary = " (supplementary: validation chose each model)" if split != "test" else ""
    fig.suptitle(f"{title}: {split} split{supplementary}")
    _save(fig, png, pdf, dpi)


GAP_LIMIT = 1.0  # colour scale of Figure 3: ±1, all of the target primary's headroom, alike in every panel
FIGURE3_GROUP_SIZE = (3.3, 1.95)  # inches per (architecture, family): one column of a two-column paper


def figure_transferability(transferability: pd.DataFrame, title: str, png: str | Path, pdf: str | Path,
                           dpi: int = 150, split: str = "test") -> None:
    """Figure 3: per architecture and family (``copy``, ``reinit``), a group of small heatmaps
    (rows sources, columns targets), each cell a curve averaged over relative depth l_c / L_H
    over one span per experiment: the span every architecture and family of it sweeps
    (:func:`gradual_transfer.tables.common_depth_span`; ``reinit`` has no l_c = 0), so the
    families compare like with like. The panels:

    - the normalised gap (the fraction of the target primary's headroom over a trivial predictor
      that the transfer loses), the outlined diagonal being the self-transfer control's;
    - beyond the control (where the run has controls): the part of the gap the control does not
      explain (transfer minus control, run by run) over the same headroom; no diagonal;
    - the asymmetry of the normalised gap (A → B minus B → A) once per unordered pair, as a
      heatmap's upper triangle for three tasks or more, written as one number for two.

    Every panel has the same colour scale, ±GAP_LIMIT, with one colourbar (beyond it: saturated;
    the printed number is exact). Each group is FIGURE3_GROUP_SIZE, legible in one column."""
    sns = _style(font_scale=0.72)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    rows = with_family(transferability)
    rows = rows[rows["split"] == split]
    groups = (rows[["experiment", "arch", "upper_groups"]].drop_duplicates()
              .sort_values(["experiment", "arch", "upper_groups"],
                           key=lambda c: c.map({f: i for i, f in enumerate(FAMILIES)}) if c.name == "upper_groups"
                           else c).itertuples(index=False))
    groups = list(groups)
    spans = {experiment: common_depth_span(rows[rows["experiment"] == experiment], split)
             for experiment in rows["experiment"].unique()}
    columns = 1 if len(groups) <= 1 else 2
    n_rows = max(1, -(-len(groups) // columns))
    width, height = FIGURE3_GROUP_SIZE
    fig = plt.figure(figsize=(width * columns, height * n_rows + 0.85), layout="constrained")
    grid = fig.add_gridspec(n_rows + 1, columns, height_ratios=[height] * n_rows + [0.55])
    cmap = sns.color_palette("vlag", as_cmap=True)
    for i, (experiment, arch, family) in enumerate(groups):
        sub = fig.add_subfigure(grid[i // columns, i % columns])
        span = spans[experiment]
        gap = transferability_matrix(rows, arch, split, family, span, "normalised_gap")
        beyond = transferability_matrix(rows, arch, split, family, span, "normalised_beyond_control")
        tasks = list(gap.index)
        panels = [("normalised gap\n(diagonal: control)", gap)]
        if beyond.notna().any().any():
            panels.append(("beyond the\ncontrol", beyond))
        once = asymmetry(gap).where(np.triu(np.ones(gap.shape, dtype=bool), k=1))  # each unordered pair once
        if len(tasks) > 2:
            panels.append(("asymmetry\n(row−col. gap)", once))
        axes = sub.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for k, (ax, (name, values)) in enumerate(zip(axes, panels)):
            with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                sns.heatmap(values, ax=ax, cmap=cmap, center=0, vmin=-GAP_LIMIT, vmax=GAP_LIMIT, annot=True,
                            fmt=".2f", annot_kws={"fontsize": 5.5}, square=True, linewidths=0.5, cbar=False,
                            mask=values.isna())
            ax.set_title(name, fontsize="small")
            ax.grid(False)
            ax.tick_params(axis="x", labelrotation=90)
            ax.tick_params(axis="y", labelrotation=0)
            ax.set_xlabel("target")
            ax.set_ylabel("source" if k == 0 else "")
        for k in range(len(tasks)):  # the diagonal is the control, not a transfer: outlined
            axes[0].add_patch(Rectangle((k, k), 1, 1, fill=False, edgecolor="black", linewidth=1.2))
        span_text = f"relative depth {span[0]:.2g}–{span[1]:.2g}" if span else "no common span"
        sub.suptitle(f"{arch}, {family} ({experiment}; {span_text})", fontsize="medium")
        notes = []
        if len(tasks) == 2:
            a, b = tasks
            value = once.loc[a, b]
            notes.append(f"asymmetry {a} → {b} minus {b} → {a}: "
                         + (f"{value:+.2f}" if np.isfinite(value) else "not measured"))
        mine = rows[rows["arch"] == arch]
        no_headroom = sorted(set(mine.loc[mine["trivial_error"] <= mine["primary_error"], "target"]))
        if no_headroom:  # an empty column: the target's primary model does no better than a trivial predictor
            notes.append(f"no headroom over a trivial predictor: {', '.join(no_headroom)}")
        if notes:
            sub.supxlabel("\n".join(notes), fontsize="small")
    bar = fig.add_subfigure(grid[-1, :])
    bar_axes = bar.add_axes((0.15, 0.72, 0.7, 0.14))
    fig.colorbar(ScalarMappable(Normalize(-GAP_LIMIT, GAP_LIMIT), cmap), cax=bar_axes, orientation="horizontal")
    bar_axes.set_xlabel("share of the target primary's headroom lost (every panel; beyond ±1: saturated)",
                        fontsize="small")
    fig.suptitle(title, fontsize="large")
    _save(fig, png, pdf, dpi)


def _save(fig, png: str | Path, pdf: str | Path, dpi: int) -> None:
    import matplotlib.pyplot as plt

    with plt.rc_context(FONT_TYPES):  # also when a caller changed the style in between
        for path in (png, pdf):
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=Path(path).suffix[1:], dpi=dpi)
    plt.close(fig)


def figure_curves(curves: pd.DataFrame, task_metrics: dict[str, str], title: str, png: str | Path,
                  pdf: str | Path, dpi: int = 150) -> None:
    """Training curves, one row of panels per architecture, its first seed: the validation score
    of its primary models against epoch, a panel per score (the score each task selects its
    model by: SELECTION_SCORES of the task's metric), a line per task and fold; then the
    transfers of one pair (the architecture's first source → target, first fold), a panel per
    family, a line per l_c. Every line is one training job (no averaging: each (family, l_c) of
    that pair, seed and fold is one job). Panels of one score share their y-axis; the transfer
    panels of an architecture share their epoch axis, so a shorter recipe shows as a shorter
    line. Each row has exactly its own panels."""
    sns = _style()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = curves[curves["phase"] == "train"]
    if "upper_groups" not in epochs.columns:  # a table from before families: copy transfers only
        epochs = with_family(epochs)
    epochs = epochs.assign(score_name=epochs["target"].map(lambda t: SELECTION_SCORES[task_metrics[t]]))
    archs = sorted(epochs["arch"].unique())
    layout = {}
    for arch in archs:
        rows = epochs[(epochs["arch"] == arch) & (epochs["seed"] == epochs.loc[epochs["arch"] == arch, "seed"].min())]
        primaries = rows[rows["kind"] == "primary"]
        transfers = rows[rows["kind"] == "transfer"]
        pair = None
        if not transfers.empty:
            first = transfers.sort_values(["source", "target", "fold"]).iloc[0]
            pair = transfers[(transfers["source"] == first["source"]) & (transfers["target"] == first["target"])
                             & (transfers["fold"] == first["fold"])]
        panels = [("primary", score) for score in sorted(primaries["score_name"].unique())]
        if pair is not None:
            panels += [("transfer", family) for family in FAMILIES if family in set(pair["upper_groups"])]
        layout[arch] = (primaries, pair, panels)
    widest = max([len(panels) for _, _, panels in layout.values()] + [1])
    fig = plt.figure(figsize=(3.4 * widest + 0.6, 2.7 * max(1, len(archs)) + 0.4), layout="constrained")
    subfigures = fig.subfigures(max(1, len(archs)), 1, squeeze=False)[:, 0]
    palette = sns.color_palette("colorblind")
    axes_of_score: dict[str, list] = {}
    for subfig, arch in zip(subfigures, archs):
        primaries, pair, panels = layout[arch]
        axes = subfig.subplots(1, len(panels), squeeze=False)[0]
        transfer_axes = []
        for ax, (kind, which) in zip(axes, panels):
            if kind == "primary":
                score = which
                models = primaries[primaries["score_name"] == score].groupby(["target", "fold"], sort=True)
                for k, ((task, fold), line) in enumerate(models):
                    line = line.sort_values("epoch")
                    ax.plot(line["epoch"], line["score"], marker="o", markersize=3, color=palette[k % len(palette)],
                            label=task + (f" fold {fold}" if fold else ""))
                ax.set_title("primary models", fontsize="small")
                ax.legend(title="model", fontsize="x-small", title_fontsize="x-small", loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), frameon=False)
            else:
                family, score = which, pair["score_name"].iloc[0]
                lines = pair[pair["upper_groups"] == family]
                lcs = sorted(lines["lc"].unique())
                colours = dict(zip(lcs, sns.color_palette("viridis", len(lcs))))
                for lc in lcs:
                    line = lines[lines["lc"] == lc].sort_values("epoch")
                    ax.plot(line["epoch"], line["score"], marker="o", markersize=3, color=colours[lc], label=str(lc))
                first = pair.iloc[0]
                ax.set_title(f"{first['source']} → {first['target']}"
                             + (f" (fold {first['fold']})" if first["fold"] else "") + f", {family}", fontsize="small")
                ax.legend(title="l_c", fontsize="x-small", title_fontsize="x-small", loc="upper left",
                          bbox_to_anchor=(1.02, 1.0), frameon=False)
                transfer_axes.append(ax)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation {score}")
            if score in axes_of_score:
                ax.sharey(axes_of_score[score][0])
            axes_of_score.setdefault(score, []).append(ax)
        for ax in transfer_axes[1:]:
            ax.sharex(transfer_axes[0])
        subfig.suptitle(arch, fontsize="medium")
        for ax in axes:
            drawn = sorted({x for line in ax.get_lines() for x in line.get_xdata()})
            if len(drawn) <= 10:
                ax.set_xticks(drawn)  # whole epochs, also where a line has one point
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in transfer_axes[1:]:
            ax.set_xticks(sorted({x for a in transfer_axes for line in a.get_lines() for x in line.get_xdata()}))
    fig.suptitle(f"{title} (first seed)")
    _save(fig, png, pdf, dpi)
