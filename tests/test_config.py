"""Configuration checks: schema rejections, cross-references and data roots, with messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradual_transfer.config import (
    ConfigError,
    load_config,
    used_datasets,
    validate_config,
)
from gradual_transfer.architectures import num_groups
from gradual_transfer.params import canonical
from conftest import REPO, run_snakemake


def problems_of(config: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, **kwargs)
    return str(info.value)


def test_shipped_configs_are_valid(paper_config, demo_config):
    validate_config(paper_config, check_data=False)
    validate_config(demo_config, check_data=False)


def test_load_config_merges_like_snakemake():
    merged = load_config(REPO / "config.yaml", REPO / "config.demo.yaml")
    assert merged["outdir"] == "results/demo"
    assert merged["datasets"]["cifar10"]["verify_md5"] is False
    assert merged["datasets"]["cifar10"]["root"] == "data/cifar"  # kept from config.yaml
    assert merged["tasks"]["cifar10"]["training"]["epochs"] == 8  # from config.demo.yaml
    assert merged["tasks"]["cifar10"]["training"]["optimizer"]["lr"] == 0.1  # merged, kept from config.yaml


def test_exponent_without_decimal_point_is_rejected_with_the_fix(paper_config):
    paper_config["tasks"]["cifar10"]["training"]["optimizer"]["lr"] = "1e-4"  # what YAML gives for 1e-4
    message = problems_of(paper_config, check_data=False)
    assert "tasks.cifar10.training.optimizer.lr" in message
    assert "'1e-4' is a string" in message
    assert "Write 1.0e-4" in message


def test_quoted_integer_is_rejected(paper_config):
    paper_config["tasks"]["svhn"]["training"]["batch_size"] = "64"
    message = problems_of(paper_config, check_data=False)
    assert "tasks.svhn.training.batch_size: '64' is a string" in message
    assert "Write 64 without quotes" in message


def test_wrong_type_is_rejected(paper_config):
    paper_config["features"]["num_mel_bins"] = [40]
    assert "features.num_mel_bins" in problems_of(paper_config, check_data=False)


def test_unknown_key_is_rejected_and_allowed_keys_listed(paper_config):
    paper_config["tasks"]["asr"]["training"]["learning_rate"] = 0.1
    message = problems_of(paper_config, check_data=False)
    assert "tasks.asr.training: unknown key(s) 'learning_rate'" in message
    assert "Allowed keys:" in message and "optimizer" in message


def test_unknown_top_level_key_is_rejected(paper_config):
    paper_config["epochs"] = 3
    assert "(top level): unknown key(s) 'epochs'" in problems_of(paper_config, check_data=False)


def test_enumeration_and_range_are_enforced(paper_config):
    paper_config["tasks"]["ser"]["metric"] = "f1"
    paper_config["tasks"]["ser"]["training"]["optimizer"]["momentum"] = 1.5
    message = problems_of(paper_config, check_data=False)
    assert "tasks.ser.metric: 'f1' is not allowed; choose one of 'accuracy', 'per', 'ue'" in message
    assert "tasks.ser.training.optimizer.momentum" in message


def test_schedule_alternatives_report_the_closest_problem(paper_config):
    paper_config["tasks"]["cifar10"]["training"]["schedule"] = {"kind": "step", "milestones": [0.5], "gamma": "0.1"}
    assert "tasks.cifar10.training.schedule.gamma: '0.1' is a string" in problems_of(paper_config, check_data=False)


def test_all_problems_are_listed_at_once(paper_config):
    paper_config["outdir"] = 3
    paper_config["runtime"]["cpu"]["channels_last"] = "yes"
    message = problems_of(paper_config, check_data=False)
    assert "2 problem(s)" in message and "outdir" in message and "runtime.cpu.channels_last" in message


def test_lc_beyond_the_architecture_depth_is_rejected(paper_config):
    paper_config["architectures"]["model_a"]["lc"] = [0, 6]
    message = problems_of(paper_config, check_data=False)
    assert "architectures.model_a.lc: [6] exceed L_H = 5" in message


def test_references_between_sections_are_checked(paper_config):
    paper_config["experiments"]["images"]["architectures"] = ["densenet100"]
    paper_config["experiments"]["speech"]["ser_source_folds"] = [1, 9]
    message = problems_of(paper_config, check_data=False)
    assert "unknown architecture 'densenet100'" in message


def test_a_tasks_metric_must_be_the_one_its_dataset_is_scored_with(paper_config):
    paper_config["tasks"]["cifar10"]["metric"] = "per"
    paper_config["tasks"]["asr"]["metric"] = "accuracy"
    message = problems_of(paper_config, check_data=False)
    assert "tasks.cifar10.metric: 'per', but cifar10 is scored with 'accuracy'; write metric: accuracy." in message
    assert "tasks.asr.metric: 'accuracy', but timit is scored with 'per'; write metric: per." in message


def test_ser_source_folds_must_be_ser_folds(paper_config):
    paper_config["tasks"]["ser"]["folds"] = [1, 2]
    paper_config["experiments"]["speech"]["ser_source_folds"] = [1, 3]
    assert "experiments.speech.ser_source_folds: [3] are not in tasks.ser.folds [1, 2]" in problems_of(
        paper_config, check_data=False)


def test_group_counts():
    assert num_groups({"kind": "densenet"}) == 7
    assert num_groups({"kind": "convnet", "conv_groups": [{}, {}], "fc_units": [1, 2, 3]}) == 5


def test_missing_data_root_names_key_path_and_layout(paper_config, tmp_path):
    paper_config["experiments"]["images"]["enabled"] = False
    paper_config["datasets"]["timit"]["root"] = str(tmp_path / "nowhere")
    paper_config["datasets"]["iemocap"]["root"] = str(tmp_path)
    message = problems_of(paper_config)
    assert f"datasets.timit.root: {tmp_path / 'nowhere'} does not exist" in message
    assert "TRAIN/DR1..DR8/<speaker>/<utt>.WAV" in message
    assert f"datasets.iemocap.root: {tmp_path} is not laid out as expected: missing {tmp_path}/Session1/sentences/wav" in message
    assert "make demo" in message
    assert "cifar" not in message  # disabled experiments need no data


def test_data_roots_of_demo_generated_datasets_are_not_checked(demo_config):
    validate_config(demo_config)  # nothing exists yet: the demo rules will make it


def test_used_datasets_follow_enabled_experiments(paper_config):
    assert used_datasets(paper_config) == ["cifar10", "cifar100", "svhn", "timit", "iemocap"]
    paper_config["experiments"]["speech"]["enabled"] = False
    assert used_datasets(paper_config) == ["cifar10", "cifar100", "svhn"]


def test_canonical_params_sort_keys_and_strip_numpy():
    import numpy as np

    value = canonical({"b": np.float64(0.5), "a": [np.int64(3), {"z": 1, "y": Path("p")}]})
    assert repr(value) == "{'a': [3, {'y': 'p', 'z': 1}], 'b': 0.5}"
    assert type(value["b"]) is float


def test_snakemake_refuses_to_plan_without_data(paper_config, tmp_path):
    result = run_snakemake(tmp_path, "-n", config=paper_config)
    assert result.returncode != 0
    assert "datasets.timit.root: data/timit does not exist" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_snakemake_reports_schema_errors(paper_config, tmp_path):
    paper_config["tasks"]["ser"]["finetune"]["optimizer"]["weight_decay"] = "5e-4"
    result = run_snakemake(tmp_path, "-n", config=paper_config)
    assert result.returncode != 0
    assert "Write 5.0e-4" in result.stderr + result.stdout


def test_placeholder_trees_pass_the_layout_check(tmp_path):
    from gradual_transfer.data.layouts import check_root, write_placeholders

    for dataset in ("cifar10", "cifar100", "svhn", "timit", "iemocap"):
        root = tmp_path / dataset
        assert check_root(dataset, root, {"use_extra": True}) is not None
        write_placeholders(dataset, root, {"use_extra": True})
        assert check_root(dataset, root, {"use_extra": True}) is None


def test_runtime_overrides_must_name_an_architecture(paper_config):
    paper_config["runtime"]["cuda_by_architecture"] = {"model_c": {"prefetch": False}}
    assert "runtime.cuda_by_architecture.model_c: unknown architecture" in problems_of(paper_config, check_data=False)


@pytest.mark.parametrize("value, words", [([], "upper_groups"), (["copy", "copy"], "upper_groups"),
                                          (["random"], "'random'"), ("reinit", "upper_groups")])
def test_upper_groups_must_be_families(paper_config, value, words):
    paper_config["experiments"]["images"]["upper_groups"] = value
    message = problems_of(paper_config, check_data=False)
    assert "experiments.images.upper_groups" in message and words in message


@pytest.mark.parametrize("key, value", [("realign_self_loop_scale", 1.5), ("realign_self_loop_scale", -0.1),
                                        ("realign_transition_scale", -1.0)])
def test_alignment_scales_are_bounded(paper_config, key, value):
    paper_config["tasks"]["asr"][key] = value
    assert f"tasks.asr.{key}" in problems_of(paper_config, check_data=False)
    paper_config["tasks"]["asr"][key] = 0.5
    validate_config(paper_config, check_data=False)
    paper_config["tasks"]["asr"]["decode"]["self_loop_scale"] = 2.0
    assert "tasks.asr.decode.self_loop_scale" in problems_of(paper_config, check_data=False)


@pytest.mark.parametrize("override, accepted", [
    ({"outdir": "results/elsewhere"}, True),  # a partial file: the rest comes from config.yaml
    ({"tasks": {"cifar10": {"classes": "ten"}}}, False),  # the schema refuses
    ({"architectures": {"densenet40": {"lc": [0, 99]}}}, False),  # beyond L_H
])
def test_check_config_and_snakemake_merge_configfiles_alike(paper_config, tmp_path, override, accepted):
    """Both read config.yaml of the working directory, then each --configfile over it."""
    import yaml

    from gradual_transfer.data.layouts import write_placeholders
    from test_cli import cli

    for dataset, entry in paper_config["datasets"].items():
        write_placeholders(dataset, tmp_path / entry["root"], entry)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(paper_config))
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(override))
    checked = cli("check-config", "--configfile", "mine.yaml", cwd=tmp_path)
    planned = run_snakemake(tmp_path, "-n", "--configfile", "mine.yaml")
    assert (checked.returncode == 0) == accepted, checked.stderr
    assert (planned.returncode == 0) == accepted, planned.stderr[-2000:]


def test_the_schemas_defaults_are_filled_once_after_validation(paper_config):
    """A key the user leaves out reads as the schema's ``default:`` (the code has no defaults)."""
    from gradual_transfer.config import with_defaults

    for key in ("seeds", "self_transfer", "upper_groups"):
        paper_config["experiments"]["images"].pop(key, None)
    filled = with_defaults(paper_config)
    assert filled["experiments"]["images"]["seeds"] == [0]
    assert filled["experiments"]["images"]["self_transfer"] is False
    assert filled["experiments"]["images"]["upper_groups"] == ["copy"]
    assert "seeds" not in paper_config["experiments"]["images"]  # the given config is left as it is
    chosen = {**paper_config["experiments"]["speech"], "seeds": [3]}
    assert with_defaults({**paper_config, "experiments": {**paper_config["experiments"], "speech": chosen}}
                         )["experiments"]["speech"]["seeds"] == [3]


def test_the_figures_resolution_defaults_to_the_schemas_150_dpi(paper_config):
    """report.smk reads ``figures.dpi`` without a default of its own: the schema fills it."""
    from gradual_transfer.config import with_defaults

    paper_config.pop("figures")
    assert with_defaults(paper_config)["figures"] == {"dpi": 150}
    assert with_defaults({**paper_config, "figures": {}})["figures"] == {"dpi": 150}
    assert with_defaults({**paper_config, "figures": {"dpi": 300}})["figures"] == {"dpi": 300}


@pytest.mark.parametrize("entry, sentence", [
    ({"kind": "kadli", "root": "data/k"}, "datasets.mine.kind: 'kadli' is not allowed; choose one of 'imagefolder', "
                                          "'kaldi'."),
    ({"root": "data/k"}, "datasets.mine: 'kind' is a required property of a dataset of one's own, read as its kind "
                         "says - imagefolder"),
])
def test_a_dataset_of_ones_own_of_no_known_kind_is_told_the_kinds(paper_config, entry, sentence):
    """Not the keys of an image folder: `kind: kadli` is a misspelt kind."""
    paper_config["datasets"]["mine"] = entry
    message = problems_of(paper_config, check_data=False)
    assert f"  - {sentence}" in message and "image_size" not in message, message


def test_own_datasets_still_get_their_kinds_defaults(paper_config):
    paper_config["datasets"]["pics"] = {"kind": "imagefolder", "root": "p", "image_size": 16}
    paper_config["datasets"]["talk"] = {"kind": "kaldi", "root": "t"}
    config = validate_config(paper_config, check_data=False)
    assert config["datasets"]["pics"]["bad_images"] == "fail"
    assert config["datasets"]["talk"]["allow_commands"] is False and config["datasets"]["talk"]["labels"] is None
