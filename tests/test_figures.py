"""The report's figures as a reviewer reads them, drawn from hand-made tables in seconds: Figures
1 and 2 as Yosinski et al. drew theirs (every unit a point, the mean a line, colour by what was
trained, style by family, families apart where their budgets differ), l_c ticks that never run
into each other (measured with the renderer on the demo's DenseNet), bands only from enough
units, shared y-axes per metric and a log axis where a metric spans a wide range, nothing drawn
over anything else; Figure 3 over one depth span with the part beyond the control, one colourbar
and one column wide; training curves that never mix families; and PDFs with TrueType fonts."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from gradual_transfer import figures as figures_module
from gradual_transfer.figures import (FAMILY_LABELS, FAMILY_STYLES, FIGURE3_GROUP_SIZE, KIND_LABELS, LC_AXIS,
                                      figure_curves, figure_transfer, figure_transferability)
from gradual_transfer.architectures import group_names
from gradual_transfer.report import held_constant
from gradual_transfer.statistics import MIN_UNITS_FOR_INTERVAL
from gradual_transfer.tables import COLUMNS

CONVNET = {"kind": "convnet", "conv_groups": [{"channels": [4], "pool": True}, {"channels": [4], "pool": True}],
           "fc_units": [8, 8], "dropout": 0.1}
DENSENET = {"kind": "densenet", "depth": 10, "growth_rate": 4, "init_features": 8, "dropout": 0.0}
DEMO_LC = [0, 3, 5, 7]  # the demo's DenseNet sweep


def test_groups_are_named_by_the_model_classes():
    assert group_names(CONVNET) == ["conv1", "conv2", "fc1", "fc2"]
    assert group_names(DENSENET) == ["conv0", "denseblock1", "transition1", "denseblock2", "transition2",
                                     "denseblock3", "final"]


# --- hand-made results tables ------------------------------------------------------------------

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


TASKS = ("cifar10", "cifar100", "svhn")


def image_like_table(seeds: list[int], lcs=DEMO_LC, families=("copy", "reinit"), tasks=TASKS) -> pd.DataFrame:
    """A results table for the demo's image experiment: ``densenet_demo`` between ``tasks`` at
    ``lcs``, both families (``reinit`` without l_c = 0) with their controls. A transfer's accuracy
    is 60 − 2 l_c + seed (copy) or 50 − 2 l_c + seed (reinit); its control 5 points above; the
    primary 70 + seed."""
    rows = []
    for seed, split, target in itertools.product(seeds, ["validation", "test"], tasks):
        base = {"experiment": "images", "arch": "densenet_demo", "seed": seed, "fold": 0, "split": split,
                "metric": "accuracy", "decode_at_grid_edge": None, "target": target}
        primary = 70.0 + seed
        rows.append({**base, "kind": "primary", "upper_groups": None, "source": target, "lc": None, "value": primary,
                     "primary_value": primary, "control_value": np.nan})
        for family, lc in itertools.product(families, lcs):
            if family == "reinit" and lc == 0:
                continue
            value = (60.0 if family == "copy" else 50.0) - 2 * lc + seed
            rows.append({**base, "kind": "control", "upper_groups": family, "source": target, "lc": lc,
                         "value": value + 5, "primary_value": primary, "control_value": np.nan})
            for source in tasks:
                if source != target:
                    rows.append({**base, "kind": "transfer", "upper_groups": family, "source": source, "lc": lc,
                                 "value": value, "primary_value": primary, "control_value": value + 5})
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
    figure_transfer(table, "speech", {a: [0, 2, 4] for a in archs}, "Figure 2", tmp_path / "f.png", tmp_path / "f.pdf")
    return drawn[-1]


def draw_images(drawn, table, tmp_path, comparable=None, split="test"):
    figure_transfer(table, "images", {"densenet_demo": DEMO_LC}, "Figure 1", tmp_path / "f.png", tmp_path / "f.pdf",
                    split=split, comparable=comparable)
    return drawn[-1]


def panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def overlapping_tick_labels(fig) -> list[tuple[str, str]]:
    """Every pair of x tick labels of one panel whose rendered text boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in panels(fig):
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        found += [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if overlaps(box_a, box_b)]
    return found


# --- Figures 1 and 2 ---------------------------------------------------------------------------

def test_lc_ticks_of_the_demos_densenet_never_overlap(drawn, tmp_path):
    """The demo's DenseNet at l_c 0, 3, 5, 7, both families apart (12 panels of 2.7 in): the
    ticks are evenly spaced and carry the numbers; the groups they hold constant are the
    caption's. The check measures the rendered text and finds the labels drawn before this
    figure ("3\\nconv0–transition1" beside "5\\nconv0–transition2") overlapping."""
    fig = draw_images(drawn, image_like_table([0]), tmp_path)
    assert len(panels(fig)) == 12
    for ax in panels(fig):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "3", "5", "7"]
        assert list(ax.get_xticks()) == [0, 1, 2, 3] and ax.get_xlabel() == LC_AXIS  # evenly spaced
    assert overlapping_tick_labels(fig) == []
    groups = group_names(DENSENET)
    assert held_constant(DEMO_LC, groups) == ["0: none", "3: conv0–transition1", "5: conv0–transition2",
                                              "7: conv0–final"]
    for ax in panels(fig):  # the labels of old, under the same ticks
        old = [label.replace(": ", "\n") for label in held_constant(DEMO_LC, groups)]
        ax.set_xticks(ax.get_xticks(), old)
    assert ("3\nconv0–transition1", "5\nconv0–transition2") in overlapping_tick_labels(fig)


def lines_of(ax):
    """(mean lines, unit points) of a panel, as the figure names them (gid "<family> <kind> ...")."""
    lines = [line for line in ax.get_lines() if (line.get_gid() or "").endswith(" mean")
             and line.get_gid() != "primary mean"]
    points = [line for line in ax.get_lines() if (line.get_gid() or "").endswith(" units")]
    assert all(p.get_linestyle() == "None" for p in points)
    return lines, points


def colour(line) -> tuple:
    from matplotlib.colors import to_rgb

    return tuple(round(c, 3) for c in to_rgb(line.get_color()))


def test_every_unit_is_a_point_and_the_mean_a_line(drawn, tmp_path):
    fig = draw_images(drawn, image_like_table([0, 1, 2]), tmp_path)
    ax = next(ax for ax in panels(fig) if ax.get_title().startswith("cifar10 → svhn (copy)"))
    assert "3 seeds per l_c" in ax.get_title()
    lines, points = lines_of(ax)
    assert len(lines) == 2 and len(points) == 2  # transfer and control: a mean line and their seeds each
    transfer = max(lines, key=lambda line: -np.mean(line.get_ydata()))  # the lower curve: the transfer
    assert list(transfer.get_ydata()) == [61.0, 55.0, 51.0, 47.0]  # the mean of seeds 0, 1, 2
    seeds = next(p for p in points if colour(p) == colour(transfer))
    assert sorted(seeds.get_ydata()) == sorted(60.0 - 2 * lc + s for lc in DEMO_LC for s in (0, 1, 2))
    assert np.allclose(sorted(set(np.round(seeds.get_xdata()))), [0, 1, 2, 3])  # at the l_c positions
    [primary] = [line for line in ax.get_lines() if line.get_gid() == "primary mean"]
    assert primary.get_ydata()[0] == pytest.approx(71.0)  # the dashed primary: mean of 70, 71, 72
    assert bands(fig) == 2 * len(panels(fig))  # 3 units: a band for each transfer and control curve


def test_colour_says_what_was_trained_and_style_the_family(drawn, tmp_path):
    fig = draw_images(drawn, image_like_table([0]), tmp_path, comparable={t: True for t in TASKS})
    assert len(panels(fig)) == 6  # budgets match: both families in one panel per pair
    ax = panels(fig)[0]
    lines, points = lines_of(ax)
    kinds = {(colour(line), line.get_linestyle()) for line in lines}
    assert len({c for c, _ in kinds}) == 2 and len({s for _, s in kinds}) == 2 and len(kinds) == 4
    assert {p.get_marker() for p in points} == {FAMILY_STYLES["copy"][1], FAMILY_STYLES["reinit"][1]}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {KIND_LABELS["transfer"], KIND_LABELS["control"], KIND_LABELS["primary"], FAMILY_LABELS["copy"],
            FAMILY_LABELS["reinit"]} <= set(legend)
    assert "point: one seed; line: their mean" in legend
    assert not any("interval" in text for text in legend)  # one seed: no band, none named


def test_families_whose_budgets_differ_never_share_a_panel(drawn, tmp_path):
    fig = draw_images(drawn, image_like_table([0]), tmp_path, comparable={"cifar10": True})
    titles = [ax.get_title().split("\n")[0] for ax in panels(fig)]
    assert "svhn → cifar10" in titles and "cifar100 → cifar10" in titles  # budgets match into cifar10
    assert {"cifar10 → svhn (copy)", "cifar10 → svhn (reinit)", "svhn → cifar100 (reinit)"} <= set(titles)
    for ax in panels(fig):
        styles = {line.get_linestyle() for line in lines_of(ax)[0]}
        assert len(styles) == (2 if ax.get_title().endswith(("→ cifar10\n1 seed per l_c")) else 1), ax.get_title()


def test_figures_draw_the_split_asked_for(drawn, tmp_path):
    table = image_like_table([0])
    table.loc[table["split"] == "validation", "value"] += 100  # tells the splits apart
    test = draw_images(drawn, table, tmp_path)
    validation = draw_images(drawn, table, tmp_path, split="validation")
    assert max(y for ax in panels(test) for line in ax.get_lines() for y in line.get_ydata()) < 100
    assert min(y for ax in panels(validation) for line in lines_of(ax)[1] for y in line.get_ydata()) > 100
    assert "test split" in test._suptitle.get_text()
    assert "validation split (supplementary" in validation._suptitle.get_text()


@pytest.mark.parametrize("archs", [["model_a"], ["model_a", "model_b", "model_c"]])
def test_nothing_is_drawn_over_anything_else(drawn, tmp_path, archs):
    fig = draw_speech(drawn, speech_like_table(archs, folds=[1, 2], seeds=[0]), archs, tmp_path)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in panels(fig)]  # ticks, labels, titles
    assert len(boxes) == 2 * len(archs)
    [legend] = fig.legends
    legend_box = legend.get_window_extent(renderer)
    assert not any(overlaps(legend_box, box) for box in boxes)
    page = fig.bbox  # and nothing cut off at the figure's edges
    assert all(page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1
               for b in boxes + [legend_box])
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
    titles = [fig._suptitle.get_window_extent(renderer)] + [s._suptitle.get_window_extent(renderer)
                                                            for s in fig.subfigs]
    assert not any(overlaps(title, box) for title in titles for box in boxes + [legend_box])
    assert overlapping_tick_labels(fig) == []


def test_the_demos_image_figure_draws_nothing_over_anything_else(drawn, tmp_path):
    fig = draw_images(drawn, image_like_table([0, 1, 2]), tmp_path)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in panels(fig)] + [fig.legends[0].get_window_extent(renderer)]
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))
    assert all(fig.bbox.x0 <= b.x0 and b.x1 <= fig.bbox.x1 for b in boxes)


def test_axes_name_lc_and_share_y_per_metric(drawn, tmp_path):
    archs = ["model_a", "model_b"]
    fig = draw_speech(drawn, speech_like_table(archs, folds=[1, 2], seeds=[0]), archs, tmp_path)
    axes = panels(fig)
    for ax in axes:
        assert ax.get_xlabel() == LC_AXIS
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "4"]
    per = [ax for ax in axes if ax.get_title().startswith("ser → asr")]
    ue = [ax for ax in axes if ax.get_title().startswith("asr → ser")]
    assert len(per) == len(ue) == 2
    assert all(ax.get_ylim() == per[0].get_ylim() for ax in per) and all(ax.get_ylim() == ue[0].get_ylim() for ax in ue)
    assert per[0].get_ylim() != ue[0].get_ylim()
    # SER → ASR: ~90 % at full freezing beside ~10 %: a log axis, said on the axis; UE stays linear
    assert all(ax.get_yscale() == "log" and "log scale" in ax.get_ylabel() for ax in per)
    assert all(ax.get_yscale() == "linear" and ax.get_ylabel().startswith("unweighted error") for ax in ue)


def test_accuracy_keeps_a_linear_axis_whatever_its_range(drawn, tmp_path):
    table = speech_like_table(["m"], folds=[1, 2], seeds=[0])
    table.loc[table["metric"] == "per", "metric"] = "accuracy"  # 8–90: a wide range, but an accuracy
    fig = draw_speech(drawn, table, ["m"], tmp_path)
    assert all(ax.get_yscale() == "linear" for ax in panels(fig))


def bands(fig) -> int:
    from matplotlib.collections import PolyCollection

    return sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)


def test_bands_only_from_enough_units_with_seeds_averaged_within_folds(drawn, tmp_path):
    few = MIN_UNITS_FOR_INTERVAL - 1
    # many seeds, few folds: the units are the folds, too few for a band; a point per fold
    fig = draw_speech(drawn, speech_like_table(["m"], folds=list(range(1, few + 1)), seeds=[0, 1, 2, 3, 4]),
                      ["m"], tmp_path)
    assert bands(fig) == 0
    assert all(f"{few} folds per l_c" in ax.get_title() for ax in panels(fig))
    ser = next(ax for ax in panels(fig) if ax.get_title().startswith("asr → ser"))
    assert all(len(points.get_ydata()) == few * 3 for points in lines_of(ser)[1])  # folds × l_c, not runs
    assert not any("interval" in t.get_text() for t in fig.legends[0].get_texts())
    # enough folds: a band for every transfer and control curve, named in the legend
    fig = draw_speech(drawn, speech_like_table(["m"], folds=list(range(1, MIN_UNITS_FOR_INTERVAL + 1)), seeds=[0]),
                      ["m"], tmp_path)
    assert bands(fig) == 2 * 2  # 2 panels × (transfer, control), one split
    assert any(f"≥ {MIN_UNITS_FOR_INTERVAL} units" in t.get_text() for t in fig.legends[0].get_texts())


# --- Figure 3 ----------------------------------------------------------------------------------

def transferability_rows(archs, tasks=("asr", "ser"), families=("copy",)) -> pd.DataFrame:
    """Transferability rows on the test split: per architecture and family, every pair at l_c
    0, 2, 4 of 4 groups (``reinit`` at 2, 4); the normalised gap 0.1 l_c (+5 from ``ser``), the
    part beyond the control 2 points of a 35-point headroom."""
    rows = []
    for arch, family, source, target in itertools.product(archs, families, tasks, tasks):
        for lc in ([0, 2, 4] if family == "copy" else [2, 4]):
            transfer = source != target
            rows.append({"experiment": "speech", "arch": arch, "kind": "transfer" if transfer else "control",
                         "upper_groups": family, "source": source, "target": target, "split": "test",
                         "metric": "ue", "lc": lc, "relative_depth": lc / 4,
                         "normalised_gap": 0.1 * lc + (5.0 if source == "ser" else 0),
                         "specificity": 2.0 if transfer and family == "reinit" else np.nan,
                         "source_features_cost": 2.0 if transfer and family == "copy" else np.nan,
                         "trivial_error": 75.0, "primary_error": 40.0})
    return pd.DataFrame(rows)


def draw_figure3(drawn, rows, tmp_path):
    figure_transferability(rows, "Figure 3", tmp_path / "f.png", tmp_path / "f.pdf")
    fig = drawn[-1]
    heatmaps = [ax for sub in fig.subfigs for ax in sub.axes if ax.collections and not hasattr(ax, "_colorbar")]
    return fig, heatmaps


def test_figure3_compares_the_families_over_the_span_both_sweep(drawn, tmp_path):
    fig, heatmaps = draw_figure3(drawn, transferability_rows(["a"], families=("copy", "reinit")), tmp_path)
    groups = [sub._suptitle.get_text() for sub in fig.subfigs if sub._suptitle]
    assert groups == ["a, copy (speech; relative depth 0.5–1)", "a, reinit (speech; relative depth 0.5–1)"]
    gaps = [ax for ax in heatmaps if ax.get_title().startswith("normalised gap")]
    for ax in gaps:  # copy averaged over 0.5–1 (l_c 2 and 4) as reinit is: 0.3, not 0.2 over 0–1
        cells = {t.get_text() for t in ax.texts}
        assert "0.30" in cells and "0.20" not in cells
    for ax in heatmaps:
        assert ax.collections[0].get_clim() == (-1.0, 1.0)  # one scale for every panel: 5.x saturates


def test_figure3_shows_the_gap_beyond_the_control_with_one_colourbar(drawn, tmp_path):
    fig, heatmaps = draw_figure3(drawn, transferability_rows(["a", "b"]), tmp_path)
    beyond = [ax for ax in heatmaps if ax.get_title().startswith("beyond the")]
    assert len(beyond) == 2
    for ax in beyond:  # 2 points of a 35-point headroom, off the diagonal only
        assert sorted(t.get_text() for t in ax.texts if t.get_text()) == ["0.06", "0.06"]
    colourbars = [ax for ax in fig.findobj(lambda o: hasattr(o, "_colorbar"))]
    assert len(colourbars) == 1
    for ax in heatmaps:
        assert ax.get_xlabel() == "target"
    assert [ax.get_ylabel() for ax in heatmaps] == ["source", "", "source", ""]
    width, _ = fig.get_size_inches()
    assert width <= 2 * FIGURE3_GROUP_SIZE[0]  # two groups side by side: a two-column figure at most


def test_figure3_writes_a_two_task_asymmetry_as_a_number_and_draws_more(drawn, tmp_path):
    fig, heatmaps = draw_figure3(drawn, transferability_rows(["a"]), tmp_path)
    assert not any(ax.get_title().startswith("asymmetry") for ax in heatmaps)
    # asr → ser averages 0.2, ser → asr 5.2: the asymmetry asr → ser minus ser → asr is −5.00
    assert "asymmetry asr → ser minus ser → asr: -5.00" in fig.subfigs[0]._supxlabel.get_text()
    fig, heatmaps = draw_figure3(drawn, transferability_rows(["a"], tasks=("asr", "ser", "x")), tmp_path)
    [skew] = [ax for ax in heatmaps if ax.get_title().startswith("asymmetry")]
    assert len([t for t in skew.texts if t.get_text()]) == 3  # three tasks: each unordered pair once
    [gap] = [ax for ax in heatmaps if ax.get_title().startswith("normalised gap")]
    assert len(gap.patches) == 3  # the diagonal outlined: the controls


# --- training curves ---------------------------------------------------------------------------

def curve_rows(kind, source, target, fold, lc, scores, family=None):
    return [{"experiment": "speech", "arch": "m", "kind": kind, "upper_groups": family, "source": source,
             "target": target, "seed": 0, "fold": fold, "lc": lc, "epoch": epoch, "phase": "train",
             "train_loss": 1.0, "score": score} for epoch, score in enumerate(scores, start=1)]


def test_training_curves_never_mix_the_families(drawn, tmp_path):
    """copy fine-tunes 2 epochs, reinit trains 8, at the same l_c of the same pair: a panel per
    family, each line one job (never 7.5, the average of 8.0 and 7.0), the epoch axis shared."""
    rows = curve_rows("primary", "ser", "ser", 1, 0, [50, 60, 70]) + curve_rows("primary", "asr", "asr", 0, 0, [40, 45])
    for lc in (3, 5):
        rows += curve_rows("transfer", "asr", "ser", 1, lc, [8.0, 8.0], "copy")
        rows += curve_rows("transfer", "asr", "ser", 1, lc, [7.0] * 8, "reinit")
    figure_curves(pd.DataFrame(rows), {"asr": "per", "ser": "ue"}, "Curves", tmp_path / "c.png", tmp_path / "c.pdf")
    fig = drawn[-1]
    axes = panels(fig)
    assert len(axes) == len(fig.axes) == 4  # frame accuracy, unweighted accuracy, copy, reinit: no empty slot
    copy, reinit = [ax for ax in axes if ax.get_title().startswith("asr → ser")]
    assert copy.get_title().endswith("copy") and reinit.get_title().endswith("reinit")
    assert {y for line in copy.get_lines() for y in line.get_ydata()} == {8.0}
    assert {y for line in reinit.get_lines() for y in line.get_ydata()} == {7.0}
    assert [len(line.get_xdata()) for line in copy.get_lines()] == [2, 2]  # one line per l_c
    assert [t.get_text() for t in reinit.get_legend().get_texts()] == ["3", "5"]
    assert copy.get_xlim() == reinit.get_xlim()  # a shorter recipe shows as a shorter line
    unweighted = [ax for ax in axes if ax.get_ylabel() == "validation unweighted accuracy (%)"]
    assert len(unweighted) == 3 and all(ax.get_ylim() == unweighted[0].get_ylim() for ax in unweighted)


def test_training_curves_are_faceted_by_the_score_each_task_selects_by(drawn, tmp_path):
    rows = []
    for task, fold in (("asr", 0), ("ser", 1), ("ser", 2)):
        rows += curve_rows("primary", task, task, fold, 0, [51.0, 52.0, 53.0])
    for lc in (0, 2):
        rows += curve_rows("transfer", "asr", "ser", 1, lc, [60.0, 60.0], "copy")
    table = pd.DataFrame(rows).drop(columns="upper_groups")  # a table from before families: copy
    figure_curves(table, {"asr": "per", "ser": "ue"}, "Curves", tmp_path / "c.png", tmp_path / "c.pdf")
    fig = drawn[-1]
    labels = [ax.get_ylabel() for ax in panels(fig)]
    assert labels == ["validation frame accuracy (%)", "validation unweighted accuracy (%)",
                      "validation unweighted accuracy (%)"]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["0", "2"]
    assert list(fig.axes[-1].get_xticks()) == [1, 2]  # whole epochs
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in panels(fig)]  # legends beside, inside the box
    assert not any(overlaps(a, b) for a, b in itertools.combinations(boxes, 2))


# --- the files ---------------------------------------------------------------------------------

def pdf_font_types(path) -> set[str]:
    """The subtypes of the fonts a PDF embeds (matplotlib writes its font dictionaries
    uncompressed): Type3, TrueType, Type0 with CIDFontType2 (TrueType glyphs), Type1."""
    return set(re.findall(rb"/Subtype\s*/(Type3|Type1|MMType1|TrueType|Type0|CIDFontType0|CIDFontType2)\b",
                          path.read_bytes()))


def test_pdfs_embed_truetype_fonts_never_type3(tmp_path):
    import matplotlib.pyplot as plt

    figure_transfer(image_like_table([0]), "images", {"densenet_demo": DEMO_LC}, "Figure 1 – l_c → accuracy",
                    tmp_path / "f.png", tmp_path / "f.pdf")
    figure_transferability(transferability_rows(["a"]), "Figure 3", tmp_path / "g.png", tmp_path / "g.pdf")
    for pdf in ("f.pdf", "g.pdf"):
        fonts = pdf_font_types(tmp_path / pdf)
        assert fonts and b"Type3" not in fonts and fonts & {b"TrueType", b"CIDFontType2"}, (pdf, fonts)
    with plt.rc_context({"pdf.fonttype": 3}):  # the reader sees matplotlib's default when it is used
        fig, ax = plt.subplots()
        ax.set_title("l_c, accuracy")
        fig.savefig(tmp_path / "type3.pdf")
        plt.close(fig)
    assert b"Type3" in pdf_font_types(tmp_path / "type3.pdf")
