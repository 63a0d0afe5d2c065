"""Seeds, self-transfer controls and the transferability summary, on hand-made results with
known answers: pairing, gaps, intervals, the onset, co-adaptation and specificity, the paired
test, the matrix and its asymmetry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradual_transfer.analysis import (
    asymmetry,
    ci95,
    figure_transferability,
    results_table,
    summary_table,
    transferability_matrix,
    transferability_table,
)

T_975_1 = 12.706204736  # Student t, 97.5 % quantile, 1 degree of freedom


def metrics(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(fields))
    return path


def image_runs(tmp_path: Path) -> list[Path]:
    """CIFAR-10 as the target over two seeds: primary, SVHN → CIFAR-10 and the control at l_c 3."""
    common = {"experiment": "images", "arch": "d", "target": "cifar10", "fold": 0}
    accuracies = {  # kind, source, lc → (seed 0, seed 1) test accuracy
        ("primary", "cifar10", 0): (90.0, 92.0),
        ("transfer", "svhn", 3): (80.0, 86.0),
        ("control", "cifar10", 3): (88.0, 90.0),
    }
    files = []
    for (kind, source, lc), values in accuracies.items():
        for seed, value in enumerate(values):
            files.append(metrics(tmp_path, f"{kind}{seed}", **common, kind=kind, source=source, lc=lc, seed=seed,
                                 validation={"accuracy": value + 1}, test={"accuracy": value}))
    return files


def test_each_transfer_carries_its_primary_and_control_of_the_same_seed(tmp_path):
    table = results_table(image_runs(tmp_path))
    test = table[table["split"] == "test"].set_index(["kind", "seed"])
    assert test.loc[("transfer", 0), "primary_value"] == 90.0 and test.loc[("transfer", 1), "primary_value"] == 92.0
    assert test.loc[("transfer", 0), "control_value"] == 88.0 and test.loc[("transfer", 1), "control_value"] == 90.0
    assert test.loc[("control", 1), "primary_value"] == 92.0 and math.isnan(test.loc[("control", 1), "control_value"])
    assert list(table["kind"].drop_duplicates()) == ["primary", "transfer", "control"]


def test_summary_gives_mean_spread_and_interval_over_seeds(tmp_path):
    summary = summary_table(results_table(image_runs(tmp_path)))
    row = summary[(summary["kind"] == "transfer") & (summary["split"] == "test")].iloc[0]
    std = np.std([80.0, 86.0], ddof=1)
    assert (row["mean"], row["runs"]) == (83.0, 2) and row["std"] == pytest.approx(std)
    assert row["ci95"] == pytest.approx(T_975_1 * std / math.sqrt(2))
    assert row["primary_mean"] == 91.0
    assert math.isnan(ci95(3.0, 1)) and ci95(0.0, 5) == 0.0


def test_gap_interval_coadaptation_and_specificity(tmp_path):
    table = transferability_table(results_table(image_runs(tmp_path)))
    row = table[(table["kind"] == "transfer") & (table["split"] == "test")].iloc[0]
    # errors: primary 10, 8; transfer 20, 14; control 12, 10
    assert (row["source"], row["target"], row["lc"], row["runs"]) == ("svhn", "cifar10", 3, 2)
    assert row["primary_error"] == 9.0 and row["error"] == 17.0
    assert row["gap"] == 8.0 and row["gap_std"] == pytest.approx(math.sqrt(8))
    assert row["gap_ci95"] == pytest.approx(T_975_1 * math.sqrt(8) / math.sqrt(2))
    assert row["normalised_gap"] == pytest.approx(8 / 9)
    assert row["co_adaptation"] == 2.0 and row["specificity"] == 6.0  # 8 and 4 run by run
    assert row["specificity_ci95"] == pytest.approx(T_975_1 * math.sqrt(8) / math.sqrt(2))
    assert row["p_value"] == 0.5  # the smallest two-sided p of an exact signed-rank test on 2 runs
    control = table[(table["kind"] == "control") & (table["split"] == "test")].iloc[0]
    assert control["gap"] == 2.0 and control["source"] == control["target"] == "cifar10"
    assert pd.isna(row["onset_lc"])  # 8 ± 25: no interval above zero


def ser_runs(tmp_path: Path, gaps: dict[int, list[float]]) -> list[Path]:
    """8 SER folds: primary unweighted error 40 + fold; ASR → SER at each l_c, fold f's error
    raised by gaps[lc][f − 1]."""
    files = []
    common = {"experiment": "speech", "arch": "a", "target": "ser", "seed": 0}
    for fold in range(1, 9):
        primary = 40.0 + fold
        files.append(metrics(tmp_path, f"p{fold}", **common, kind="primary", source="ser", fold=fold, lc=0,
                             validation={"ue": primary}, test={"ue": primary}))
        for lc, values in gaps.items():
            files.append(metrics(tmp_path, f"t{fold}-{lc}", **common, kind="transfer", source="asr", fold=fold, lc=lc,
                                 validation={"ue": primary + values[fold - 1]}, test={"ue": primary + values[fold - 1]}))
    return files


def test_specificity_onset_and_the_paired_test_over_folds(tmp_path):
    gaps = {0: [1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 0.2],   # around zero
            2: [3.0, 4.0, 2.0, 5.0, 3.5, 4.5, 2.5, 3.0],      # above zero in every fold
            5: [9.0, 8.0, 10.0, 7.0, 9.0, 8.5, 11.0, 9.5]}
    table = transferability_table(results_table(ser_runs(tmp_path, gaps)))
    test = table[table["split"] == "test"].set_index("lc")
    assert list(test["runs"]) == [8, 8, 8] and test.loc[2, "gap"] == pytest.approx(np.mean(gaps[2]))
    assert test.loc[0, "gap"] - test.loc[0, "gap_ci95"] < 0 < test.loc[2, "gap"] - test.loc[2, "gap_ci95"]
    assert set(test["onset_lc"]) == {2}
    assert test.loc[2, "p_value"] == pytest.approx(2 / 2**8)  # 8 positive differences: exact minimum
    from scipy.stats import wilcoxon

    assert test.loc[0, "p_value"] == pytest.approx(wilcoxon([g for g in gaps[0] if g]).pvalue)
    assert test["co_adaptation"].isna().all()  # no control in these runs


def test_matrix_and_asymmetry():
    rows = []
    values = {("a", "b"): [0.1, 0.3], ("b", "a"): [0.4, 0.6], ("a", "a"): [0.0, 0.1], ("b", "b"): [0.05, 0.05]}
    for (source, target), gaps in values.items():
        for lc, gap in enumerate(gaps):
            for split in ("validation", "test"):
                rows.append({"experiment": "speech", "arch": "m", "kind": "control" if source == target else "transfer",
                             "source": source, "target": target, "split": split, "lc": lc,
                             "normalised_gap": gap if split == "test" else 99.0})
    table = pd.DataFrame(rows)
    matrix = transferability_matrix(table, "m")
    assert matrix.loc["a", "b"] == pytest.approx(0.2) and matrix.loc["b", "a"] == pytest.approx(0.5)
    assert matrix.loc["a", "a"] == pytest.approx(0.05)  # the control on the diagonal
    skew = asymmetry(matrix)
    assert skew.loc["a", "b"] == pytest.approx(-0.3) and skew.loc["b", "a"] == pytest.approx(0.3)
    assert np.isnan(skew.loc["a", "a"])


def test_figure3_from_a_results_table(tmp_path):
    table = transferability_table(results_table(image_runs(tmp_path)))
    figure_transferability(table, "Figure 3", tmp_path / "f.png", tmp_path / "f.pdf", dpi=50)
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").stat().st_size > 0


# --- end to end (the tiny run shared with the workflow tests) --------------------------------

def test_the_tiny_run_has_controls_their_pairing_and_figure3(tiny_results):
    out, config, table = tiny_results
    controls = table[table["kind"] == "control"]
    assert (controls["source"] == controls["target"]).all()
    # images: 3 tasks × 3 l_c; speech per architecture: TIMIT and 2 SER folds × 2 l_c; two splits each
    assert len(controls[controls["experiment"] == "images"]) == 3 * 3 * 2
    assert len(controls[controls["experiment"] == "speech"]) == 2 * (1 + 2) * 2 * 2
    assert set(controls[controls["target"] == "ser"]["fold"]) == {1, 2}  # per fold
    transfers = table[table["kind"] == "transfer"]
    assert transfers["control_value"].notna().all() and transfers["primary_value"].notna().all()

    transferability = pd.read_csv(out / "tables" / "transferability.tsv", sep="\t")
    rows = transferability[transferability["kind"] == "transfer"]
    assert len(rows) == len(transfers.groupby(["arch", "source", "target", "lc", "split"]))
    assert rows["co_adaptation"].notna().all()
    assert rows["specificity"].to_numpy() == pytest.approx((rows["gap"] - rows["co_adaptation"]).to_numpy(), abs=2e-4)
    ser = rows[rows["target"] == "ser"]
    assert (ser["runs"] == 2).all() and ser["gap_ci95"].notna().all() and ser["p_value"].notna().all()
    figure = out / "figures" / "figure3_transferability.png"
    assert figure.stat().st_size > 20_000 and (out / "figures" / "figure3_transferability.pdf").is_file()
