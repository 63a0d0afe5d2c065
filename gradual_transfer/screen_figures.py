"""The screen's figure: what each estimate predicted beside what the transfers measured.

One row of panels per (experiment, architecture), one column per estimate. A panel plots, for
every transfer pair, the estimate at each swept l_c ≥ 1 (the mean over units) against the
measured normalised gap of the ``copy`` transfers on the test split (the share of the target
primary's headroom the transfer loses), the points of one pair joined in l_c order and the
deepest marked: an estimate that predicts the curve puts the joined points on a monotone path,
rising for the probe's error, falling for the others. Its title gives Kendall's τ over all the
panel's points, with n and p (:func:`gradual_transfer.agreement.agreement_table`, scope ``all``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gradual_transfer.agreement import ESTIMATES, estimate_points
from gradual_transfer.figures import _save, _style

ESTIMATE_LABELS = {"logme": "LogME", "h_score_shrinkage": "shrinkage H-score",
                   "probe_error": "linear probe's error (%)", "leep": "LEEP (l_c = L_H only)"}
FAMILY = "copy"  # the paper's transfers: the groups above l_c fine-tuned from the source


def figure_estimates(estimates: pd.DataFrame, transferability: pd.DataFrame, agreement: pd.DataFrame, title: str,
                     png: str | Path, pdf: str | Path, dpi: int = 150) -> None:
    sns = _style()
    import matplotlib.pyplot as plt

    points = estimate_points(estimates, transferability)
    points = points[points["upper_groups"] == FAMILY]
    rows = sorted(points.groupby(["experiment", "arch"]).groups) or [("", "")]
    fig, axes = plt.subplots(len(rows), len(ESTIMATES), figsize=(2.3 * len(ESTIMATES), 2.3 * len(rows) + 0.6),
                             squeeze=False, sharey="row")
    pairs = sorted(points.groupby(["source", "target"]).groups)
    colours = dict(zip(pairs, sns.color_palette("colorblind", max(len(pairs), 1))))
    for r, (experiment, arch) in enumerate(rows):
        mine = points[(points["experiment"] == experiment) & (points["arch"] == arch)]
        for c, name in enumerate(ESTIMATES):
            ax = axes[r, c]
            for (source, target), curve in mine.groupby(["source", "target"]):
                curve = curve.sort_values("lc").dropna(subset=[name, "normalised_gap"])
                if curve.empty:
                    continue
                ax.plot(curve[name], curve["normalised_gap"], "-o", color=colours[(source, target)], markersize=3,
                        linewidth=1, label=f"{source} → {target}")
                deepest = curve.iloc[-1]
                ax.plot(deepest[name], deepest["normalised_gap"], "s", color=colours[(source, target)], markersize=5)
            found = agreement[(agreement["experiment"] == experiment) & (agreement["arch"] == arch)
                              & (agreement["upper_groups"] == FAMILY) & (agreement["scope"] == "all")
                              & (agreement["estimate"] == name)]
            if len(found) and np.isfinite(found["tau"].iloc[0]):
                row = found.iloc[0]
                ax.set_title(f"{arch}: τ = {row['tau']:.2f}\n(n = {row['n_points']}, p = {row['p_value']:.2g})",
                             fontsize=8)
            else:
                ax.set_title(f"{arch}: τ undefined\n(n = {len(found) and found['n_points'].iloc[0]})", fontsize=8)
            ax.set_xlabel(ESTIMATE_LABELS[name], fontsize=8)
            if c == 0:
                ax.set_ylabel("measured normalised gap\n(test, copy; higher: worse)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 0.97))
    _save(fig, png, pdf, dpi)
