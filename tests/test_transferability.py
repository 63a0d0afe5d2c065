"""Seeds, self-transfer controls and the transferability summary, on hand-made results with
known answers: pairing, units of replication, gaps, intervals, exact tests and Holm's
adjustment, the onset, the parts of a gap per family, the normalisation, the matrix and its
asymmetry, full-precision tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradual_transfer.figures import figure_transferability
from gradual_transfer.statistics import ci95
from gradual_transfer.tables import (
    DECOMPOSITION,
    asymmetry,
    results_table,
    summary_table,
    transferability_matrix,
    transferability_table,
    write_tsv,
)
from test_statistics import brute_force_p

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
    assert (row["mean"], row["n_units"], row["n_runs"], row["unit"]) == (83.0, 2, 2, "seed")
    assert row["std"] == pytest.approx(std) and row["ci95"] == pytest.approx(T_975_1 * std / math.sqrt(2))
    assert row["primary_mean"] == 91.0 and row["upper_groups"] == "copy"
    primary = summary[(summary["kind"] == "primary") & (summary["split"] == "test")].iloc[0]
    assert pd.isna(primary["upper_groups"]) and pd.isna(primary["lc"])
    assert math.isnan(ci95(3.0, 1)) and ci95(0.0, 5) == 0.0


def test_runs_without_a_value_are_not_counted(tmp_path):
    table = results_table(image_runs(tmp_path))
    third = table[table["seed"] == 1].assign(seed=2)
    third.loc[third["kind"] == "transfer", "value"] = float("nan")
    summary = summary_table(pd.concat([table, third], ignore_index=True))
    row = summary[(summary["kind"] == "transfer") & (summary["split"] == "test")].iloc[0]
    assert (row["n_units"], row["n_runs"]) == (2, 2)  # not 3: the run without a value is left out
    assert row["ci95"] == pytest.approx(T_975_1 * np.std([80.0, 86.0], ddof=1) / math.sqrt(2))


TRIVIAL = {"cifar10": 90.0, "ser": 75.0}
GROUPS = {"d": 7, "a": 5}


def test_gap_interval_and_the_parts_of_a_copy_transfer(tmp_path):
    table = transferability_table(results_table(image_runs(tmp_path)), TRIVIAL, GROUPS)
    row = table[(table["kind"] == "transfer") & (table["split"] == "test")].iloc[0]
    # errors: primary 10, 8; transfer 20, 14; control 12, 10
    assert (row["source"], row["target"], row["lc"], row["upper_groups"]) == ("svhn", "cifar10", 3, "copy")
    assert (row["unit"], row["n_units"], row["relative_depth"]) == ("seed", 2, 3 / 7)
    assert row["primary_error"] == 9.0 and row["error"] == 17.0
    assert row["gap"] == 8.0 and row["gap_std"] == pytest.approx(math.sqrt(8))
    assert row["gap_ci95"] == pytest.approx(T_975_1 * math.sqrt(8) / math.sqrt(2))
    # the gap over the headroom the primary gained over a uniform guess among 10 classes
    assert row["trivial_error"] == 90.0 and row["normalised_gap"] == pytest.approx(8 / (90 - 9))
    assert row["rehead_and_finetune"] == 2.0 and row["source_features_cost"] == 6.0  # 8 and 4 run by run
    assert row["source_features_cost_ci95"] == pytest.approx(T_975_1 * math.sqrt(8) / math.sqrt(2))
    assert pd.isna(row["co_adaptation"]) and pd.isna(row["specificity"])  # those name the reinit family only
    # 2 units: no signed-rank p could be below 0.05, so none is given, and no onset
    assert pd.isna(row["gap_p"]) and pd.isna(row["gap_p_holm"]) and pd.isna(row["source_features_cost_p"])
    assert row["test_note"] == ("gap: 2 non-zero differences; a two-sided p below 0.05 needs 6; "
                                "source_features_cost: 2 non-zero differences; a two-sided p below 0.05 needs 6")
    assert pd.isna(row["onset_lc"]) and row["onset_measure"] == "source_features_cost"
    assert row["onset_reason"] == "no test at l_c = 3 (2 non-zero differences; a two-sided p below 0.05 needs 6)"
    control = table[(table["kind"] == "control") & (table["split"] == "test")].iloc[0]
    assert control["gap"] == 2.0 and control["source"] == control["target"] == "cifar10"
    assert control["onset_measure"] == "gap" and pd.isna(control["rehead_and_finetune"])


def test_validation_rows_are_described_never_tested(tmp_path):
    gaps = {lc: [1.0 + f for f in range(8)] for lc in (0, 2, 5)}
    table = transferability_table(results_table(ser_runs(tmp_path, gaps)), TRIVIAL, GROUPS)
    validation, test = (table[table["split"] == split] for split in ("validation", "test"))
    assert validation["gap"].notna().all() and validation["gap_ci95"].notna().all()  # means and intervals
    for column in ("gap_p", "gap_p_holm", "gap_p_fixed_sequence", "onset_lc"):
        assert validation[column].isna().all() and test[column].notna().all()
    assert validation["test_note"].str.startswith("validation split: it chose the model").all()


def test_a_control_that_beats_its_primary_flags_an_undertrained_primary(tmp_path):
    # the control beats the primary by 2 points in both seeds: too few units for an interval,
    # beyond the margin in every unit (2 of 81 points of headroom is 2.5 %)
    files = image_runs(tmp_path)
    for path in files:
        run = json.loads(path.read_text())
        if run["kind"] == "control":
            run["test"]["accuracy"] = run["test"]["accuracy"] + 4.0  # 92, 94 against primaries 90, 92
            path.write_text(json.dumps(run))
    table = transferability_table(results_table(files), TRIVIAL, GROUPS)
    control = table.query("kind == 'control' and split == 'test'").iloc[0]
    assert control["gap"] == -2.0 and control["diagnostic"].startswith(
        "primary under-trained: its self-transfer control has 2 points less error (7 vs 9; n = 2), in every unit")
    transfer = table.query("kind == 'transfer' and split == 'test'").iloc[0]
    assert transfer["diagnostic"].startswith("primary under-trained: this target's self-transfer control beats it")
    assert (table.query("split == 'validation'")["diagnostic"] == "").all()  # diagnosed on the test split
    # by less than the margin: not flagged
    for path in files:
        run = json.loads(path.read_text())
        if run["kind"] == "control":
            run["test"]["accuracy"] = run["test"]["accuracy"] - 3.0  # 1 point better: 1.2 % of the headroom
            path.write_text(json.dumps(run))
    table = transferability_table(results_table(files), TRIVIAL, GROUPS)
    assert (table["diagnostic"] == "").all()


def test_with_enough_units_a_control_is_flagged_beyond_its_interval(tmp_path):
    controls = {3: [-1.0 - 0.1 * f for f in range(8)]}  # 8 folds, each control better than its primary
    files = ser_runs(tmp_path, controls)
    for path in files:
        run = json.loads(path.read_text())
        if run["kind"] == "transfer":
            run.update(kind="control", source="ser")
            path.write_text(json.dumps(run))
    table = transferability_table(results_table(files), TRIVIAL, GROUPS)
    control = table.query("kind == 'control' and split == 'test'").iloc[0]
    assert control["gap"] + control["gap_ci95"] < 0 and "beyond its 95 % interval" in control["diagnostic"]


def test_each_row_says_its_familys_budget(tmp_path):
    table = results_table(image_runs(tmp_path))
    budgets = {"cifar10": {"copy": {"recipe": "finetune", "epochs": 2, "batch_size": 32, "head_warmup_iterations": 20}}}
    row = transferability_table(table, TRIVIAL, GROUPS, budgets).iloc[0]
    assert row["budget"] == "finetune: 2 epochs of batch 32, after 20 head warm-up iterations (l_c < L_H)"


def model_b_curve(tmp_path: Path, worse_in: int) -> pd.DataFrame:
    """Model B's 7 l_c over the paper's 8 SER folds, the transfer worse than the primary in
    `worse_in` of the folds (by 8, 7, ... points) and better in the rest (by less), at every l_c."""
    tmp_path.mkdir(exist_ok=True)
    gaps = {lc: [(8.0 - f) if f < worse_in else -(8.0 - f) for f in range(8)] for lc in range(7)}
    table = transferability_table(results_table(ser_runs(tmp_path, gaps)), TRIVIAL, {"a": 6})
    return table[table["split"] == "test"].set_index("lc")


def test_the_papers_speech_design_can_declare_an_onset(tmp_path):
    # every fold worse at every l_c: each exact p is 2/256; Holm over 7 l_c cannot go below
    # 7 · 2/256 = 0.0547, the fixed sequence from l_c = 6 rejects all seven at 0.05
    test = model_b_curve(tmp_path, worse_in=8)
    assert (test["gap_p"] == 2 / 256).all() and (test["gap_p_holm"] == 7 * 2 / 256).all()
    assert (test["gap_p_fixed_sequence"] == 2 / 256).all()
    assert set(test["onset_lc"]) == {0} and set(test["onset_reason"]) == {""}
    assert set(test["onset_procedure"]) == {"fixed sequence from the deepest l_c (6, then shallower), each at 0.05"}
    # 5 of 8 folds worse, 3 better: above zero by the ranks, not significant at the deepest l_c, so no onset
    test = model_b_curve(tmp_path / "mixed", worse_in=5)
    assert test["onset_lc"].isna().all()
    assert set(test["onset_reason"]) == {f"not significant at l_c = 6 (p = {test.loc[6, 'gap_p']:.3g}, tested first)"}


def test_only_the_reinit_family_names_co_adaptation_and_specificity(tmp_path):
    table = results_table(image_runs(tmp_path))
    table["upper_groups"] = table["kind"].map({"primary": pd.NA, "transfer": "reinit", "control": "reinit"})
    row = transferability_table(table, TRIVIAL, GROUPS).query("kind == 'transfer' and split == 'test'").iloc[0]
    assert row["upper_groups"] == "reinit" and (row["co_adaptation"], row["specificity"]) == (2.0, 6.0)
    assert pd.isna(row["rehead_and_finetune"]) and pd.isna(row["source_features_cost"])
    assert row["onset_measure"] == "specificity"


def test_no_normalised_gap_without_headroom(tmp_path):
    # a primary no better than the trivial predictor has gained nothing a transfer could lose
    table = transferability_table(results_table(image_runs(tmp_path)), {"cifar10": 9.0}, GROUPS)
    row = table.query("kind == 'transfer' and split == 'test'").iloc[0]
    assert row["primary_error"] == 9.0 and pd.isna(row["normalised_gap"]) and row["gap"] == 8.0


def test_a_table_needs_the_trivial_error_of_each_target(tmp_path):
    with pytest.raises(ValueError, match="no trivial error for target cifar10"):
        transferability_table(results_table(image_runs(tmp_path)), {"ser": 75.0}, GROUPS)


def ser_runs(tmp_path: Path, gaps: dict[int, list[float]], seeds: int = 1) -> list[Path]:
    """8 SER folds: primary unweighted error 40 + fold; ASR → SER at each l_c, fold f's error
    raised by gaps[lc][f − 1] (seed s adds s to the gap, and nothing to the primary)."""
    files = []
    for seed in range(seeds):
        common = {"experiment": "speech", "arch": "a", "target": "ser", "seed": seed}
        for fold in range(1, 9):
            primary = 40.0 + fold
            files.append(metrics(tmp_path, f"p{fold}-{seed}", **common, kind="primary", source="ser", fold=fold,
                                 lc=0, validation={"ue": primary}, test={"ue": primary}))
            for lc, values in gaps.items():
                value = primary + values[fold - 1] + seed
                files.append(metrics(tmp_path, f"t{fold}-{lc}-{seed}", **common, kind="transfer", source="asr",
                                     fold=fold, lc=lc, validation={"ue": value}, test={"ue": value}))
    return files


def test_exact_tests_holm_and_the_onset_over_folds(tmp_path):
    gaps = {0: [1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0, 0.2],   # around zero
            2: [3.0, 4.0, 2.0, 5.0, 3.5, 4.5, 2.5, 3.0],      # above zero in every fold
            5: [9.0, 8.0, 10.0, 7.0, 9.0, 8.5, 11.0, 9.5]}
    table = transferability_table(results_table(ser_runs(tmp_path, gaps)), TRIVIAL, GROUPS)
    test = table[table["split"] == "test"].set_index("lc")
    assert (test["unit"] == "fold").all() and list(test["n_units"]) == [8, 8, 8]
    assert test.loc[2, "gap"] == pytest.approx(np.mean(gaps[2]))
    assert test.loc[2, "gap_p"] == 2 / 2**8  # 8 positive differences: the exact minimum
    assert test.loc[0, "gap_p"] == pytest.approx(brute_force_p(gaps[0]), rel=1e-12)  # ties and a zero
    # Holm over the 3 l_c: 2/256 twice, then the larger p at l_c 0
    assert test.loc[2, "gap_p_holm"] == test.loc[5, "gap_p_holm"] == 3 * 2 / 2**8
    assert test.loc[0, "gap_p_holm"] == min(1.0, test.loc[0, "gap_p"])
    assert set(test["onset_lc"]) == {2} and set(test["onset_measure"]) == {"gap"} and set(test["onset_reason"]) == {""}
    primary = 40.0 + np.arange(1, 9)
    assert test.loc[2, "normalised_gap"] == pytest.approx(np.mean(gaps[2]) / (75 - primary.mean()))
    assert test["co_adaptation"].isna().all() and test["source_features_cost"].isna().all()  # no control


def test_seeds_of_a_fold_are_one_unit_and_a_curve_must_stay_above_zero(tmp_path):
    gaps = {1: [3.0, 4.0, 2.0, 5.0, 3.5, 4.5, 2.5, 3.0],
            3: [-1.0, -2.0, -1.5, -3.0, -2.5, -1.0, -2.0, -1.5]}  # falls back below zero
    table = transferability_table(results_table(ser_runs(tmp_path, gaps, seeds=3)), TRIVIAL, GROUPS)
    test = table[table["split"] == "test"].set_index("lc")
    assert list(test["n_units"]) == [8, 8]  # 3 seeds × 8 folds are 8 units, not 24 runs
    fold_gaps = np.array(gaps[1]) + 1  # the mean of seeds 0, 1, 2 adds 1
    assert test.loc[1, "gap_std"] == pytest.approx(np.std(fold_gaps, ddof=1))
    assert test.loc[1, "gap_ci95"] == pytest.approx(ci95(np.std(fold_gaps, ddof=1), 8))
    assert test["onset_lc"].isna().all()
    assert set(test["onset_reason"]) == {"not above zero at l_c = 3 (by the rank statistic)"}


def test_matrix_averages_over_relative_depth_and_asymmetry():
    rows = []
    curves = {("a", "b"): {0: 0.1, 5: 0.3}, ("b", "a"): {0: 0.4, 5: 0.6}, ("a", "a"): {0: 0.0, 5: 0.1},
              ("b", "b"): {0: 0.05, 5: 0.05}, ("b", "c"): {0: 0.0, 1: 1.0, 4: 1.0}}
    for (source, target), curve in curves.items():
        for lc, gap in curve.items():
            for split, family in (("validation", "copy"), ("test", "copy"), ("test", "reinit")):
                rows.append({"experiment": "speech", "arch": "m", "kind": "control" if source == target else "transfer",
                             "upper_groups": family, "source": source, "target": target, "split": split, "lc": lc,
                             "relative_depth": lc / 4 if target == "c" else lc / 5,
                             "normalised_gap": gap if (split, family) == ("test", "copy") else 99.0})
    matrix = transferability_matrix(pd.DataFrame(rows), "m")
    assert matrix.loc["a", "b"] == pytest.approx(0.2) and matrix.loc["b", "a"] == pytest.approx(0.5)
    assert matrix.loc["a", "a"] == pytest.approx(0.05)  # the control on the diagonal
    # depths 0, 1/4, 1: the trapezoids give (0 + 1)/2 · 1/4 + 1 · 3/4 = 0.875 (the mean of the
    # three l_c would be 2/3)
    assert matrix.loc["b", "c"] == pytest.approx(0.875)
    skew = asymmetry(matrix)
    assert skew.loc["a", "b"] == pytest.approx(-0.3) and skew.loc["b", "a"] == pytest.approx(0.3)
    assert np.isnan(skew.loc["a", "a"])
    assert (transferability_matrix(pd.DataFrame(rows), "m", upper_groups="reinit").loc["a", "b"] == 99.0)


def test_tables_keep_full_precision_and_figure3_reads_them(tmp_path):
    table = transferability_table(results_table(ser_runs(tmp_path, {0: [2.0] * 8, 4: [1.0 / 3] * 8})), TRIVIAL,
                                  GROUPS)
    write_tsv(table, tmp_path / "t.tsv")
    text = (tmp_path / "t.tsv").read_text()
    assert "7.8125e-03" in text  # 2/2^8 in scientific notation, exactly
    back = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert back["gap"].tolist() == table["gap"].tolist()
    assert back["gap_p"].equals(table["gap_p"]) and table["gap_p"].notna().any()
    figure_transferability(back, "Figure 3", tmp_path / "f.png", tmp_path / "f.pdf", dpi=50)
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
    assert len(rows) == len(transfers.groupby(["upper_groups", "arch", "source", "target", "lc", "split"]))
    assert "copy" in set(rows["upper_groups"]) and set(rows["upper_groups"]) <= set(DECOMPOSITION)
    for family, (control_part, rest) in DECOMPOSITION.items():
        mine = rows[rows["upper_groups"] == family]
        assert mine[control_part].notna().all() and mine[rest].notna().all()
        # read back at full precision, the two parts add up to the gap
        assert mine[rest].to_numpy() == pytest.approx((mine["gap"] - mine[control_part]).to_numpy(), abs=1e-9)
        other_parts = [c for other, parts in DECOMPOSITION.items() if other != family for c in parts]
        assert mine[other_parts].isna().all().all()
    # units: SER folds into SER, SER source folds (1) into ASR, seeds (1) into image tasks
    units = rows.groupby("target")[["unit", "n_units"]].agg(set)
    assert units.loc["ser"].tolist() == [{"fold"}, {2}] and units.loc["asr"].tolist() == [{"fold"}, {1}]
    assert units.loc["cifar10"].tolist() == [{"seed"}, {1}]
    ser = rows[rows["target"] == "ser"]
    # 2 units: an interval flagged as uninformative, but no p-value and no onset (a p below 0.05
    # needs 6); validation rows are never tested
    assert ser["gap_ci95"].notna().all() and ser["gap_p"].isna().all() and ser["onset_lc"].isna().all()
    assert (ser["interval_note"] == "2 units: uninformative (t = 12.7 standard errors)").all()
    tested = ser["split"] == "test"
    assert ser.loc[tested, "onset_reason"].str.startswith("no test at l_c").all()
    assert ser.loc[~tested, "onset_reason"].str.startswith("validation split: it chose the model").all()
    assert (transferability["normalised_gap"].notna() | (transferability["trivial_error"]
                                                          <= transferability["primary_error"])).all()
    figure = out / "figures" / "figure3_transferability.png"
    assert figure.stat().st_size > 20_000 and (out / "figures" / "figure3_transferability.pdf").is_file()
