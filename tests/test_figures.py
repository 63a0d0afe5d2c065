"""The report's figures as a reviewer reads them, drawn from synthetic tables in seconds: the l_c
axis (numbers and the architecture's own group names), which interval bands are drawn (only from
enough units of replication, counted as the summary table counts them), shared y-axes per metric,
a log axis where a metric spans a wide range, nothing drawn over anything else for 1 and 3
architectures, Figure 3's labels, scale and upper triangle, and training curves per metric."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from gradual_transfer import figures as figures_module
from gradual_transfer.figures import (LC_AXIS, figure_curves, figure_transfer, figure_transferability, lc_labels)
from gradual_transfer.architectures import group_names
from gradual_transfer.statistics import MIN_UNITS_FOR_INTERVAL
from gradual_transfer.tables import COLUMNS

CONVNET = {"kind": "convnet", "conv_groups": [{"channels": [4], "pool": True}, {"channels": [4], "pool": True}],
           "fc_units": [8, 8], "dropout": 0.1}
DENSENET = {"kind": "densenet", "depth": 10, "growth_rate": 4, "init_features": 8, "dropout": 0.0}


def test_groups_are_named_by_the_model_classes():
    assert group_names(CONVNET) == ["conv1", "conv2", "fc1", "fc2"]
    assert group_names(DENSENET) == ["conv0", "denseblock1", "transition1", "denseblock2", "transition2",
                                     "denseblock3", "final"]


def test_lc_labels_give_the_number_and_the_groups_it_holds_constant():
    assert lc_labels([3, 0, 1], ["conv1", "conv2", "fc1", "fc2"]) == ["0\nnone", "1\nconv1", "3\nconv1–fc1"]


def speech_like_table(archs: list[str], folds: list[int], seeds: list[int], lcs=(0, 2, 4)) -> pd.DataFrame:
    """A results table for a speech-like experiment: per architecture, ASR → SER over ``folds``
    and SER → ASR from the same folds, every seed, with primaries and controls; SER → ASR at full
    freezing ~90 % PER beside ~10 % elsewhere."""
    rng = np.random.default_rng(0)
    rows = []
    for arch, fold, seed, split in itertools.product(archs, folds, seeds, ["validation", "test"]):
        base = {"experiment": "speech", "arch": arch, "seed": seed, "fold": fold, "split": split,
                "decode_at_grid_edge": None}
        rows.append({**base, "kind": "primary", "upper_groups": None, "source": "ser", "target": "ser", "lc": 0,
                     "metric": "ue", "value": 40.0, "primary_value": 40.0, "control_value": np.nan})
        rows.append({**base, "kind": "primary", "upper_groups": None, "source": "asr", "target": "asr", "lc": 0,
                     "metric": "per", "value": 8.0, "primary_value": 8.0, "control_value": np.nan})
        for lc in lcs:
            ue = 42 + lc + rng.normal(0, 2)
            per = (90.0 if lc == max(lcs) else 9 + lc) + rng.normal(0, 0.5)
            for kind, source, target, metric, value in (
                    ("transfer", "asr", "ser", "ue", ue), ("control", "ser", "ser", "ue", ue - 1),
                    ("transfer", "ser", "asr", "per", per), ("control", "asr", "asr", "per", per - 0.5)):
                rows.append({**base, "kind": kind, "upper_groups": "copy", "source": source, "target": target,
                             "lc": lc, "metric": metric, "value": value,
                             "primary_value": 40.0 if target == "ser" else 8.0,
                             "control_value": value - 1 if kind == "transfer" else np.nan})
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture
def drawn(monkeypatch):
    """The figures a drawing function made, kept open instead of saved."""
    figures = []
    monkeypatch.setattr(figures_module, "_save", lambda fig, png, pdf, dpi: figures.append(fig))
    yield figures
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def draw_speech(drawn, table, archs, tmp_path):
    figure_transfer(table, "speech", {a: [0, 2, 4] for a in archs}, {a: group_names(CONVNET) for a in archs},
                    "Figure 2", tmp_path / "f.png", tmp_path / "f.pdf")
    return drawn[-1]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("archs", [["model_a"], ["model_a", "model_b", "model_c"]])
def test_nothing_is_drawn_over_anything_else(drawn, tmp_path, archs):
    fig = draw_speech(drawn, speech_like_table(archs, folds=[1, 2], seeds=[0]), archs, tmp_path)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]  # ticks, labels, titles
    assert len(boxes) == 2 * len(archs)
    [legend] = fig.legends
    legend_box = legend.get_window_extent(renderer)
    assert not any(overlaps(legend_box, box) for box in boxes)
    page = fig.bbox  # and nothing cut off at the figure's edges
    assert all(page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1
               for b in boxes + [legend_box])
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
    title = fig._suptitle.get_window_extent(renderer)
    assert not any(overlaps(title, box) for box in boxes + [legend_box])


def test_axes_name_lc_and_groups_and_share_y_per_metric(drawn, tmp_path):
    archs = ["model_a", "model_b"]
    fig = draw_speech(drawn, speech_like_table(archs, folds=[1, 2], seeds=[0]), archs, tmp_path)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for ax in axes:
        assert ax.get_xlabel() == LC_AXIS
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0\nnone", "2\nconv1–conv2", "4\nconv1–fc2"]
        assert list(ax.get_xticks()) == [0, 2, 4]
    per = [ax for ax in axes if ax.get_ylabel().startswith("phone error rate")]
    ue = [ax for ax in axes if ax.get_ylabel().startswith("unweighted error")]
    assert len(per) == len(ue) == 2
    assert all(ax.get_ylim() == per[0].get_ylim() for ax in per) and all(ax.get_ylim() == ue[0].get_ylim() for ax in ue)
    assert per[0].get_ylim() != ue[0].get_ylim()
    # SER → ASR: ~90 % at full freezing beside ~10 %: a log axis, said on the axis; UE stays linear
    assert all(ax.get_yscale() == "log" and "log scale" in ax.get_ylabel() for ax in per)
    assert all(ax.get_yscale() == "linear" for ax in ue)


def test_accuracy_keeps_a_linear_axis_whatever_its_range(drawn, tmp_path):
    table = speech_like_table(["m"], folds=[1, 2], seeds=[0])
    table.loc[table["metric"] == "per", "metric"] = "accuracy"  # 8–90: a wide range, but an accuracy
    fig = draw_speech(drawn, table, ["m"], tmp_path)
    assert all(ax.get_yscale() == "linear" for ax in fig.axes if ax.get_visible())


def bands(fig) -> int:
    from matplotlib.collections import PolyCollection

    return sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)


def test_bands_only_from_enough_units_with_seeds_averaged_within_folds(drawn, tmp_path):
    few = MIN_UNITS_FOR_INTERVAL - 1
    # many seeds, few folds: the units are the folds, too few for a band
    fig = draw_speech(drawn, speech_like_table(["m"], folds=list(range(1, few + 1)), seeds=[0, 1, 2, 3, 4]),
                      ["m"], tmp_path)
    assert bands(fig) == 0
    assert all(f"mean over {few} folds" in ax.get_title() for ax in fig.axes if ax.get_visible())
    assert not any("interval" in t.get_text() for t in fig.legends[0].get_texts())
    # enough folds: a band for every transfer and control curve of each split, named in the legend
    fig = draw_speech(drawn, speech_like_table(["m"], folds=list(range(1, MIN_UNITS_FOR_INTERVAL + 1)), seeds=[0]),
                      ["m"], tmp_path)
    assert bands(fig) == 2 * 2 * 2  # 2 panels × (transfer, control) × 2 splits
    assert any(f"≥ {MIN_UNITS_FOR_INTERVAL} units" in t.get_text() for t in fig.legends[0].get_texts())


def transferability_rows(archs, tasks=("asr", "ser")) -> pd.DataFrame:
    rows = []
    for arch, source, target, lc in itertools.product(archs, tasks, tasks, [0, 2, 4]):
        rows.append({"experiment": "speech", "arch": arch, "kind": "control" if source == target else "transfer",
                     "upper_groups": "copy", "source": source, "target": target, "split": "test", "metric": "ue",
                     "lc": lc, "relative_depth": lc / 4, "normalised_gap": 0.1 * lc + (5.0 if source == "ser" else 0),
                     "trivial_error": 75.0, "primary_error": 40.0})
    return pd.DataFrame(rows)


def test_figure3_labels_the_control_fixes_its_scale_and_shows_each_pair_once(drawn, tmp_path):
    figure_transferability(transferability_rows(["a", "b"]), "Figure 3", tmp_path / "f.png", tmp_path / "f.pdf")
    fig = drawn[-1]
    heatmaps = [ax for ax in fig.axes if ax.get_title()]
    gaps = [ax for ax in heatmaps if "diagonal: self-transfer control" in ax.get_title()]
    asym = [ax for ax in heatmaps if "asymmetry" in ax.get_title()]
    assert len(gaps) == len(asym) == 2
    for ax in heatmaps:
        assert ax.get_xlabel() == "target task" and ax.get_ylabel() == "source task"
        assert ax.collections[0].get_clim() == (-1.0, 1.0)  # one scale for every panel: 5.x saturates
    for ax in asym:  # 2 tasks: one unordered pair, one number
        assert len([t for t in ax.texts if t.get_text()]) == 1
    for ax in gaps:  # the diagonal outlined
        assert len(ax.patches) == 2


def test_training_curves_are_faceted_by_the_score_each_task_selects_by(drawn, tmp_path):
    rows = []
    for task, fold in (("asr", 0), ("ser", 1), ("ser", 2)):
        for epoch in (1, 2, 3):
            rows.append({"experiment": "speech", "arch": "m", "kind": "primary", "source": task, "target": task,
                         "seed": 0, "fold": fold, "lc": 0, "epoch": epoch, "phase": "train", "train_loss": 1.0,
                         "score": 50.0 + epoch})
    for lc, epoch in itertools.product((0, 2), (1, 2)):
        rows.append({"experiment": "speech", "arch": "m", "kind": "transfer", "source": "asr", "target": "ser",
                     "seed": 0, "fold": 1, "lc": lc, "epoch": epoch, "phase": "train", "train_loss": 1.0, "score": 60.0})
    figure_curves(pd.DataFrame(rows), {"asr": "per", "ser": "ue"}, {"m": group_names(CONVNET)}, "Curves",
                  tmp_path / "c.png", tmp_path / "c.pdf")
    fig = drawn[-1]
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_visible()]
    assert labels == ["validation frame accuracy (%)", "validation unweighted accuracy (%)",
                      "validation unweighted accuracy (%)"]
    transfer_legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert transfer_legend == ["0: none", "2: conv1–conv2"]
    assert list(fig.axes[-1].get_xticks()) == [1, 2]  # whole epochs
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]  # legends beside, inside the box
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
