"""Command-line entry points: the data steps, the config check and training an image model, run
and debugged outside Snakemake (the other steps run only as rules).

Steps: check-config, demo-corpus, timit-features, iemocap-features, kaldi-features,
feature-stats, export-kaldi, prepare-images, train-image. For example:

    python -m gradual_transfer check-config --configfile config.yaml [--configfile config.demo.yaml]
    python -m gradual_transfer demo-corpus timit results/demo/corpora/timit --configfile ...
    python -m gradual_transfer timit-features ROOT train train.arrow
    python -m gradual_transfer kaldi-features my_corpus all.arrow --configfile config.yaml
    python -m gradual_transfer export-kaldi train.arrow kaldi/train --corpus timit --root ROOT
    python -m gradual_transfer train-image --arch densenet40 --task cifar10 --data-dir D --out-dir M
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gradual_transfer import logs
from gradual_transfer.checkpoints import CheckpointError
from gradual_transfer.architectures import num_groups
from gradual_transfer.config import BASE_CONFIG, ConfigError, load_config, validate_config, workflow_config
from gradual_transfer.data.errors import DataError
from gradual_transfer.demo import DATASETS as DEMO_DATASETS
from gradual_transfer.devices import DeviceError
from gradual_transfer.io import WriteError
from gradual_transfer.steps import GraphCaptureFailed, TrainingDiverged


def _configfiles(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", action="append", default=None,
                        help="config file(s), merged in order like Snakemake's --configfile "
                             "over config.yaml of the working directory (alone where there is none)")


def _load(args) -> dict:
    """The configuration as the workflow sees it: config.yaml of the working directory, each
    --configfile merged over it. Run elsewhere (no config.yaml there), a step reads its
    --configfile(s) alone, which must then be whole configurations."""
    files = args.configfile or []
    if files and not Path(BASE_CONFIG).is_file():
        return load_config(*files)
    return workflow_config(*files)


def cmd_check_config(args) -> int:
    files = [BASE_CONFIG, *(args.configfile or [])]
    config = validate_config(workflow_config(*(args.configfile or [])), check_data=not args.no_data)
    print(f"configuration is valid ({' merged with '.join(files)})")
    return 0 if config else 1


def cmd_demo_corpus(args) -> int:
    from gradual_transfer.demo import generate_corpus

    config = validate_config(_load(args), check_data=False)
    if args.dataset not in config.get("demo", {}):
        raise ConfigError(f"demo.{args.dataset}: no demo settings in the config; pass --configfile config.demo.yaml")
    generate_corpus(args.dataset, args.out, config["demo"][args.dataset], config["demo"]["seed"])
    return 0


def cmd_timit_features(args) -> int:
    from gradual_transfer.features import FeatureSettings, extract_timit

    config = _load(args)
    task = next(t for t in config["tasks"].values() if t["dataset"] == "timit")
    extract_timit(args.root, args.split, args.out, FeatureSettings.from_config(config["features"]),
                  frame_targets=task["frame_targets"], alignment=task.get("alignment"),
                  bad_utterances=config["datasets"]["timit"]["bad_utterances"])
    return 0


def cmd_iemocap_features(args) -> int:
    from gradual_transfer.features import FeatureSettings, extract_iemocap

    config = _load(args)
    task = next(t for t in config["tasks"].values() if t["dataset"] == "iemocap")
    extract_iemocap(args.root, args.out, FeatureSettings.from_config(config["features"]),
                    silence_threshold_db=task["silence_threshold_db"],
                    bad_utterances=config["datasets"]["iemocap"]["bad_utterances"])
    return 0


def cmd_kaldi_features(args) -> int:
    from gradual_transfer.data.kaldi import data_errors
    from gradual_transfer.data.kinds import kind_of
    from gradual_transfer.features import FeatureSettings, extract_kaldi

    config = validate_config(_load(args), check_data=False)
    kaldi_datasets = [name for name in config["datasets"] if kind_of(config, name).name == "kaldi"]
    if args.dataset not in kaldi_datasets:
        raise ConfigError(f"kaldi-features {args.dataset}: not a dataset of kind kaldi under datasets; defined: "
                          f"{', '.join(kaldi_datasets) or 'none'}.")
    entry = config["datasets"][args.dataset]
    problems = data_errors(config, args.dataset, Path(entry["root"]))  # as the workflow checks it first
    if problems:
        raise ConfigError("\n".join(problems))
    task = next((t for t in config["tasks"].values() if t["dataset"] == args.dataset), None)
    if task is None:
        raise ConfigError(f"kaldi-features {args.dataset}: no task under tasks reads it (its "
                          f"silence_threshold_db is a task's setting).")
    extract_kaldi(entry["root"], args.out, FeatureSettings.from_config(config["features"]),
                  silence_threshold_db=task["silence_threshold_db"], entry=entry, dataset=args.dataset,
                  bad_utterances=entry["bad_utterances"], classes_out=Path(args.out).with_name("classes.json"))
    return 0


def cmd_feature_stats(args) -> int:
    from gradual_transfer.features import write_stats

    write_stats(args.features, args.out, args.speakers or None)
    return 0


def cmd_export_kaldi(args) -> int:
    from gradual_transfer.features import export_kaldi

    if (args.corpus is None) != (args.root is None):
        print("error: --corpus and --root go together (wav.scp needs both)", file=sys.stderr)
        return 2
    print(f"wrote {export_kaldi(args.features, args.out_dir, args.corpus, args.root)} utterances to {args.out_dir}")
    return 0


def cmd_prepare_images(args) -> int:
    from gradual_transfer.data.kinds import dataset_classes, image_datasets, kind_of

    config = validate_config(_load(args), check_data=False)
    if args.dataset not in image_datasets(config):
        raise ConfigError(f"prepare-images {args.dataset}: not an image dataset under datasets; defined: "
                          f"{', '.join(image_datasets(config))}.")
    entry = config["datasets"][args.dataset]
    if kind_of(config, args.dataset).name == "imagefolder":
        from gradual_transfer.data.imagefolder import prepare

        prepare(args.root, args.out_dir, entry, classes=dataset_classes(config, args.dataset))
        return 0
    from gradual_transfer.data.images import prepare_images

    prepare_images(args.dataset, args.root, args.out_dir, validation=entry["validation"],
                   verify_md5=entry["verify_md5"], download=entry["download"],
                   use_extra=entry.get("use_extra", False), train_limit=entry.get("train_limit"))
    return 0


def cmd_train_image(args) -> int:
    from gradual_transfer import startup
    from gradual_transfer.tasks import images
    from gradual_transfer.experiment import run_job
    from gradual_transfer.grid import SPEECH_EXPERIMENT, Job, training_params

    config = validate_config(_load(args), check_data=False)
    transfer = args.source_model is not None
    if args.lc is not None and not transfer:
        raise ConfigError("--lc: l_c applies to a transfer; give --source-model too.")
    if args.arch not in config["architectures"]:
        raise ConfigError(f"--arch {args.arch}: not under architectures; defined: {sorted(config['architectures'])}.")
    l_h = num_groups(config["architectures"][args.arch])
    if args.lc is not None and not 0 <= args.lc <= l_h:
        raise ConfigError(f"--lc {args.lc}: {args.arch} has {l_h} layer groups; use 0..{l_h}.")
    if args.upper_groups == "reinit" and not (transfer and args.lc):
        raise ConfigError("--upper-groups reinit: re-initialises the groups above l_c of a transfer; give "
                          "--source-model and --lc 1 or more (l_c = 0 would copy nothing).")
    target = args.target or args.task
    from gradual_transfer.data.kinds import task_kind

    for flag, task in (("--task", args.task), ("--target", target)):
        if task not in config["tasks"]:
            raise ConfigError(f"{flag} {task}: not under tasks; defined: {sorted(config['tasks'])}.")
        if not task_kind(config, task).is_image:
            raise ConfigError(f"{flag} {task}: a speech task; train-image trains image models (speech models "
                              f"train in the workflow: snakemake).")
    startup.lease(config["runtime"]["cuda"])  # as a workflow job does: never a GPU that another job holds
    # the experiment that lists the target (its jobs' identity), enabled or not; the paper's by default
    experiment = next((name for name, entry in config["experiments"].items()
                       if name != SPEECH_EXPERIMENT and target in entry["tasks"]), "images")
    job = Job(experiment, args.arch, args.task, target, lc=(args.lc or 0) if transfer else None,
              upper_groups=args.upper_groups)
    data, out = Path(args.data_dir), Path(args.out_dir)
    inputs = {split: str(data / f"{split}.arrow") for split in images.SPLITS}
    inputs["stats"] = str(data / "stats.json")
    if transfer:
        inputs["source"] = args.source_model
    # the same params as the workflow's job: a rerun of the same command resumes its checkpoint
    run_job(training_params(config, job), inputs, {"model": str(out / "model.pt"), "metrics": str(out / "metrics.json")},
            config["runtime"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradual-transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="also write the log to this file")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("check-config", help="validate a configuration (schema, references, data roots)")
    _configfiles(p)
    p.add_argument("--no-data", action="store_true", help="skip the data-root checks")
    p.set_defaults(run=cmd_check_config)

    p = commands.add_parser("demo-corpus", help="generate one demo corpus in its real on-disk format")
    p.add_argument("dataset", choices=DEMO_DATASETS)
    p.add_argument("out", help="directory to create")
    _configfiles(p)
    p.set_defaults(run=cmd_demo_corpus)

    p = commands.add_parser("timit-features", help="features and frame targets of one TIMIT split (Arrow)")
    p.add_argument("root")
    p.add_argument("split", choices=["train", "dev", "test"])
    p.add_argument("out")
    _configfiles(p)
    p.set_defaults(run=cmd_timit_features)

    p = commands.add_parser("iemocap-features", help="features and frame labels of IEMOCAP (Arrow)")
    p.add_argument("root")
    p.add_argument("out")
    _configfiles(p)
    p.set_defaults(run=cmd_iemocap_features)

    p = commands.add_parser("kaldi-features", help="features and frame labels of a Kaldi data directory of "
                                                   "one's own (kind: kaldi; Arrow, and classes.json beside it)")
    p.add_argument("dataset", help="a name under datasets of kind kaldi (its root, labels and allow_commands)")
    p.add_argument("out")
    _configfiles(p)
    p.set_defaults(run=cmd_kaldi_features)

    p = commands.add_parser("feature-stats", help="per-coefficient mean/std of a feature file (JSON)")
    p.add_argument("features")
    p.add_argument("out")
    p.add_argument("--speakers", nargs="*", help="only these speakers (e.g. a fold's training speakers)")
    p.set_defaults(run=cmd_feature_stats)

    p = commands.add_parser("export-kaldi", help="a Kaldi data directory: feats.ark/scp, utt2spk, spk2utt, text "
                                                 "(and wav.scp given --corpus and --root)")
    p.add_argument("features")
    p.add_argument("out_dir")
    p.add_argument("--corpus", choices=["timit", "iemocap"], help="the corpus the features came from")
    p.add_argument("--root", help="its root folder: writes wav.scp with absolute paths")
    p.set_defaults(run=cmd_export_kaldi)

    p = commands.add_parser("prepare-images", help="an image dataset's splits → train/validation/test Arrow files")
    p.add_argument("dataset", help="a name under datasets: cifar10, cifar100, svhn or one of kind imagefolder")
    p.add_argument("root")
    p.add_argument("out_dir")
    _configfiles(p)
    p.set_defaults(run=cmd_prepare_images)

    p = commands.add_parser("train-image", help="train a primary image model, or a transfer with --source-model")
    p.add_argument("--arch", required=True)
    p.add_argument("--task", required=True, help="the task of the data (primary) or the source task (transfer)")
    p.add_argument("--target", help="target task of a transfer")
    p.add_argument("--data-dir", required=True, help="prepared splits of the target's dataset")
    p.add_argument("--source-model", help="primary model file to transfer from")
    p.add_argument("--lc", type=int, help="leading layer groups held constant (a transfer; default 0)")
    p.add_argument("--upper-groups", choices=["copy", "reinit"], default="copy",
                   help="a transfer's groups above l_c: copied from the source (the paper) or re-initialised "
                        "(Yosinski et al. 2014; trains with the target's training recipe)")
    p.add_argument("--out-dir", required=True)
    _configfiles(p)
    p.set_defaults(run=cmd_train_image)

    args = parser.parse_args(argv)
    logs.configure(args.log)
    try:
        return args.run(args)
    except (ConfigError, DataError, CheckpointError, DeviceError, TrainingDiverged, GraphCaptureFailed) as error:
        logging.getLogger("gradual_transfer").error("%s", error)
        return 2
    except OSError as error:  # a full disk, a read-only folder, a file that cannot be read: one sentence
        logging.getLogger("gradual_transfer").error("%s", os_error_sentence(error))
        return 2


def os_error_sentence(error: OSError) -> str:
    """An OSError as one sentence naming its file (a WriteError is one already)."""
    if isinstance(error, WriteError) or not error.filename:
        return error.strerror or str(error)
    return f"{error.filename}: {error.strerror or error}."


if __name__ == "__main__":
    sys.exit(main())
