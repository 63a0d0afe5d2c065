"""The image experiment: preparation, the results table, Figure 1, and the end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gradual_transfer.report import held_constant
from gradual_transfer.tables import results_table
from gradual_transfer.checkpoints import load_model_file, model_from_file
from gradual_transfer.data.cifar_svhn import prepare as prepare_images
from gradual_transfer.data.images import ImageArrays
from gradual_transfer.data.kinds import KINDS
from gradual_transfer.demo import generate_corpus
from gradual_transfer.tasks import images
from gradual_transfer.recipe import RuntimeOptions
from conftest import TINY_DEMO, run_snakemake
from test_workflow import planned_jobs


def test_the_caption_gives_each_lc_with_the_groups_it_holds_constant():
    groups = ["conv0", "denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "final"]
    assert held_constant([0, 1, 3, 7], groups) == ["0: none", "1: conv0", "3: conv0–transition1", "7: conv0–final"]


def test_prepare_images_splits_and_statistics(tmp_path):
    generate_corpus("cifar10", tmp_path / "c10", TINY_DEMO["cifar10"], 0)
    stats = prepare_images("cifar10", tmp_path / "c10", tmp_path / "out", validation=10, verify_md5=False)
    train, val, test = (ImageArrays(tmp_path / "out" / f"{s}.arrow") for s in ("train", "validation", "test"))
    assert (len(train), len(val), len(test)) == (40, 10, 20) and stats["classes"] == 10
    rows = {bytes(x) for x in np.concatenate([train.images, val.images]).reshape(50, -1)}
    assert len(rows) == 50  # validation images are held out of training, none duplicated
    pixels = train.images.reshape(-1, 3) / 255.0
    assert np.allclose(stats["mean"], pixels.mean(0)) and np.allclose(stats["std"], pixels.std(0))
    assert not train.images.flags.owndata  # memory-mapped


def test_svhn_preparation_adds_extra_and_keeps_unit_scale(tmp_path):
    generate_corpus("svhn", tmp_path / "svhn", TINY_DEMO["svhn"], 0)
    stats = prepare_images("svhn", tmp_path / "svhn", tmp_path / "out", validation=5, verify_md5=False, use_extra=True)
    assert stats["train"] == 30 + 10 - 5 and stats["mean"] == [0.0] * 3 and stats["std"] == [1.0] * 3
    assert set(ImageArrays(tmp_path / "out" / "train.arrow").labels) <= set(range(10))


def write_metrics(path: Path, **fields) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    return path


def test_results_table_joins_the_primary_baseline(tmp_path):
    common = {"experiment": "images", "arch": "d", "fold": 0}
    files = [
        write_metrics(tmp_path / "p.json", **common, kind="primary", source="svhn", target="svhn", lc=0,
                      validation={"accuracy": 90.0}, test={"accuracy": 89.0}),
        write_metrics(tmp_path / "t.json", **common, kind="transfer", source="cifar10", target="svhn", lc=3,
                      validation={"accuracy": 80.0}, test={"accuracy": 79.0}),
    ]
    table = results_table(files)
    assert list(table.columns) == ["experiment", "arch", "kind", "upper_groups", "source", "target", "seed", "fold",
                                   "lc", "split", "metric", "value", "primary_value", "control_value",
                                   "decode_at_grid_edge"]
    transfer_test = table[(table["kind"] == "transfer") & (table["split"] == "test")].iloc[0]
    assert transfer_test["value"] == 79.0 and transfer_test["primary_value"] == 89.0 and transfer_test["lc"] == 3
    assert pd.isna(table[table["kind"] == "primary"]["lc"]).all()


def test_summary_averages_over_folds_and_keeps_the_spread(tmp_path):
    from gradual_transfer.tables import summary_table

    common = {"experiment": "speech", "arch": "a", "source": "asr", "target": "ser"}
    files = [write_metrics(tmp_path / f"{kind}{fold}.json", **common, kind=kind, fold=fold, lc=2,
                           validation={"ue": value}, test={"ue": value + 1})
             for kind, fold, value in [("primary", 1, 40.0), ("primary", 2, 50.0), ("transfer", 1, 30.0), ("transfer", 2, 34.0)]]
    summary = summary_table(results_table(files))
    row = summary[(summary["kind"] == "transfer") & (summary["split"] == "test")].iloc[0]
    assert row["mean"] == 33.0 and (row["unit"], row["n_units"]) == ("fold", 2) and row["std"] == pytest.approx(np.std([31, 35], ddof=1))
    assert row["primary_mean"] == 46.0


# --- end to end (the tiny demo run shared with the workflow tests) ---------------------------

@pytest.fixture(scope="module")
def image_results(tiny_results):
    return tiny_results


def test_table_has_primary_and_every_transfer_row(image_results):
    _, config, table = image_results
    images = table[table["experiment"] == "images"]
    lcs = config["architectures"]["densenet_demo"]["lc"]
    for target in ("cifar10", "cifar100", "svhn"):
        rows = images[images["target"] == target]
        primary = rows[rows["kind"] == "primary"]
        assert len(primary) == 2 and set(primary["split"]) == {"validation", "test"}
        transfers = rows[rows["kind"] == "transfer"]
        assert sorted(set(zip(transfers["source"], transfers["lc"]))) == sorted(
            (s, lc) for s in ("cifar10", "cifar100", "svhn") if s != target for lc in lcs)
        assert (transfers["primary_value"] == transfers["split"].map(dict(zip(primary["split"], primary["value"])))).all()
    assert images["value"].between(0, 100).all()


def test_a_table_row_equals_re_evaluating_its_checkpoint(image_results):
    out, _, table = image_results
    row = table[(table["kind"] == "transfer") & (table["source"] == "svhn") & (table["target"] == "cifar10")
                & (table["lc"] == 3) & (table["split"] == "test")].iloc[0]
    model = model_from_file(load_model_file(out / "models/densenet_demo/transfer/svhn-to-cifar10/fold0/lc3/model.pt"))
    data = out / "data" / "cifar10"
    sources = images.sources(KINDS["cifar10"], {}, {**{s: data / f"{s}.arrow" for s in images.SPLITS},
                                                 "stats": data / "stats.json"})
    evaluate = images.evaluator(KINDS["cifar10"], {}, 64, torch.device("cpu"), RuntimeOptions(channels_last=False))
    score = evaluate(model, sources["test"])
    assert score["accuracy"] == pytest.approx(row["value"])


def test_frozen_groups_of_every_transfer_and_control_equal_the_source_primary(image_results):
    out, config, _ = image_results
    models = sorted((out / "models" / "densenet_demo" / "transfer").glob("*-to-*/fold0/lc*/model.pt"))
    assert len(models) == (6 + 3) * len(config["architectures"]["densenet_demo"]["lc"])  # pairs and controls
    for path in models:
        source = path.parts[-4].split("-to-")[0]
        lc = int(path.parts[-2][2:])
        primary = load_model_file(out / "models" / "densenet_demo" / "primary" / source / "fold0" / "model.pt")
        transferred = load_model_file(path)
        assert transferred["frozen_groups"] == lc
        groups = model_from_file(primary).group_names
        for index, group in enumerate(groups):
            keys = [k for k in primary["state_dict"] if k.startswith(f"body.{group}.")]
            identical = all(torch.equal(primary["state_dict"][k], transferred["state_dict"][k]) for k in keys)
            assert identical == (index < lc), (path, group)


def test_figure1_is_written_and_every_pdf_embeds_truetype_fonts(image_results):
    from test_figures import pdf_font_types

    out, _, _ = image_results
    for name in ("figure1_images", "figure1_images_validation"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        assert (out / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    pdfs = sorted((out / "figures").glob("*.pdf"))
    assert len(pdfs) == 6  # Figures 1 and 2 with their validation figures, Figure 3, the curves
    for pdf in pdfs:
        fonts = pdf_font_types(pdf)
        assert fonts and b"Type3" not in fonts, (pdf.name, fonts)


def test_metrics_record_history_and_the_selected_epoch(image_results):
    out, _, _ = image_results
    metrics = json.loads((out / "models/densenet_demo/transfer/cifar10-to-svhn/fold0/lc3/metrics.json").read_text())
    assert metrics["lc"] == 3 and metrics["num_groups"] == 7 and metrics["best_epoch"] == 1
    assert metrics["history"][0]["phase"] == "head warm-up"
    assert not (out / "models/densenet_demo/transfer/cifar10-to-svhn/fold0/lc3/resume").exists()
