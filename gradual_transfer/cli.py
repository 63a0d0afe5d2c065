"""Command-line entry points: the data steps, the config check and training an image model, run
and debugged outside Snakemake (the other steps run only as rules).

Steps: check-config, demo-corpus, speech-features, feature-stats, export-kaldi, prepare-images,
train-image. Each names a dataset of the config and asks its kind's reader (data/kinds.py) how
to read it. For example:

    python -m gradual_transfer check-config --configfile config.yaml [--configfile config.demo.yaml]
    python -m gradual_transfer demo-corpus timit results/demo/corpora/timit --configfile ...
    python -m gradual_transfer speech-features timit train.arrow --split train [--root ROOT]
    python -m gradual_transfer speech-features my_corpus all.arrow --configfile config.yaml
    python -m gradual_transfer export-kaldi train.arrow kaldi/train --dataset timit [--root ROOT]
    python -m gradual_transfer train-image --arch densenet40 --task cifar10 --data-dir D --out-dir M
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gradual_transfer import logs
from gradual_transfer.checkpoints import CheckpointError
from gradual_transfer.architectures import GroupsError, num_groups
from gradual_transfer.config import BASE_CONFIG, ConfigError, load_config, validate_config, workflow_config
from gradual_transfer.data.errors import DataError
from gradual_transfer.demo import DATASETS as DEMO_DATASETS
from gradual_transfer.devices import DeviceError
from gradual_transfer.families import FAMILIES, family_problem
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
    from gradual_transfer.gpu_support import check_machine

    files = [BASE_CONFIG, *(args.configfile or [])]
    from gradual_transfer.claims import HEADER, claims_report

    config = validate_config(workflow_config(*(args.configfile or [])), check_data=not args.no_data)
    check_machine()  # GPUs here that the jobs would lease: can this PyTorch train on them?
    print(f"configuration is valid ({' merged with '.join(files)})")
    print(HEADER)
    print("".join(f"  - {sentence}\n" for sentence in claims_report(config)), end="")
    return 0 if config else 1


def cmd_demo_corpus(args) -> int:
    from gradual_transfer.demo import generate_corpus

    config = validate_config(_load(args), check_data=False)
    if args.dataset not in config.get("demo", {}):
        raise ConfigError(f"demo.{args.dataset}: no demo settings in the config; pass --configfile config.demo.yaml")
    generate_corpus(args.dataset, args.out, config["demo"][args.dataset], config["demo"]["seed"])
    return 0


def cmd_speech_features(args) -> int:
    from gradual_transfer.data.kinds import kind_of, reader, task_reading

    config = validate_config(_load(args), check_data=False)
    speech = [name for name in config["datasets"] if not kind_of(config, name).is_image]
    if args.dataset not in speech:
        raise ConfigError(f"speech-features {args.dataset}: not a speech dataset under datasets; defined: "
                          f"{', '.join(speech) or 'none'}.")
    kind = kind_of(config, args.dataset)
    module = reader(kind)
    splits = getattr(module, "SPLITS", None)  # official splits extracted apart (TIMIT's), or one extraction
    if splits and args.split not in splits:
        raise ConfigError(f"--split: {args.dataset} is extracted one split at a time; give --split "
                          f"{' or '.join(splits)}.")
    if not splits and args.split:
        raise ConfigError(f"--split {args.split}: {args.dataset} is extracted whole (its folds are chosen by speaker "
                          f"when training); leave --split out.")
    if task_reading(config, args.dataset) is None:
        raise ConfigError(f"speech-features {args.dataset}: no task under tasks reads it (its frame targets or "
                          f"silence threshold are a task's settings).")
    root = Path(args.root or config["datasets"][args.dataset]["root"])
    if kind.data_checks:  # as the workflow checks the data before planning
        problems = module.data_errors(config, args.dataset, root)
        if problems:
            raise ConfigError("\n".join(problems))
    count = module.extract_as_configured(config, args.dataset, root, args.out, args.split)
    print(f"wrote {count} utterances of {args.dataset} to {args.out}")
    return 0


def cmd_feature_stats(args) -> int:
    from gradual_transfer.data.frontend import write_stats

    write_stats(args.features, args.out, args.speakers or None)
    return 0


def cmd_export_kaldi(args) -> int:
    from gradual_transfer.data.frontend import export_kaldi

    if args.root is not None and args.dataset is None:
        raise ConfigError("--root: the root of which dataset? Give --dataset too (wav.scp needs both).")
    kind = root = None
    if args.dataset is not None:
        from gradual_transfer.data.kinds import kind_of

        config = validate_config(_load(args), check_data=False)
        if args.dataset not in config["datasets"]:
            raise ConfigError(f"--dataset {args.dataset}: not under datasets; defined: "
                              f"{', '.join(config['datasets'])}.")
        kind, root = kind_of(config, args.dataset).name, args.root or config["datasets"][args.dataset]["root"]
    count = export_kaldi(args.features, args.out_dir, args.dataset, root, kind=kind)
    print(f"wrote {count} utterances to {args.out_dir}")
    return 0


def cmd_prepare_images(args) -> int:
    from gradual_transfer.data.kinds import image_datasets, kind_of, reader

    config = validate_config(_load(args), check_data=False)
    if args.dataset not in image_datasets(config):
        raise ConfigError(f"prepare-images {args.dataset}: not an image dataset under datasets; defined: "
                          f"{', '.join(image_datasets(config))}.")
    reader(kind_of(config, args.dataset)).prepare_as_configured(config, args.dataset, args.root, args.out_dir)
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
    problem = family_problem(args.upper_groups, args.lc if transfer else 0)
    if problem:
        raise ConfigError(f"--upper-groups {args.upper_groups}: {problem}; give --source-model and --lc 1 or more.")
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
            config["runtime"], kind=task_kind(config, target))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradual-transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="also write the log to this file")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("check-config", help="validate a configuration (schema, references, data roots) and, "
                                                  "where this machine has GPUs, that this PyTorch can train on them")
    _configfiles(p)
    p.add_argument("--no-data", action="store_true", help="skip the data-root checks")
    p.set_defaults(run=cmd_check_config)

    p = commands.add_parser("demo-corpus", help="generate one demo corpus in its real on-disk format")
    p.add_argument("dataset", choices=DEMO_DATASETS)
    p.add_argument("out", help="directory to create")
    _configfiles(p)
    p.set_defaults(run=cmd_demo_corpus)

    p = commands.add_parser("speech-features", help="features and frame targets of a speech dataset (Arrow; "
                                                    "a Kaldi directory's classes.json beside it)")
    p.add_argument("dataset", help="a speech dataset under datasets (its kind, root and settings)")
    p.add_argument("out")
    p.add_argument("--split", help="the split, for a dataset whose official splits are extracted apart")
    p.add_argument("--root", help="read the corpus from here instead of datasets.<dataset>.root")
    _configfiles(p)
    p.set_defaults(run=cmd_speech_features)

    p = commands.add_parser("feature-stats", help="per-coefficient mean/std of a feature file (JSON)")
    p.add_argument("features")
    p.add_argument("out")
    p.add_argument("--speakers", nargs="*", help="only these speakers (e.g. a fold's training speakers)")
    p.set_defaults(run=cmd_feature_stats)

    p = commands.add_parser("export-kaldi", help="a Kaldi data directory: feats.ark/scp, utt2spk, spk2utt, text "
                                                 "(and wav.scp given --corpus and --root)")
    p.add_argument("features")
    p.add_argument("out_dir")
    p.add_argument("--dataset", help="the dataset the features came from (a name under datasets): writes wav.scp "
                                     "with absolute paths")
    p.add_argument("--root", help="its root, when not datasets.<dataset>.root")
    _configfiles(p)
    p.set_defaults(run=cmd_export_kaldi)

    p = commands.add_parser("prepare-images", help="an image dataset's splits → train/validation/test Arrow files")
    p.add_argument("dataset", help="an image dataset under datasets")
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
    p.add_argument("--upper-groups", choices=FAMILIES, default="copy",
                   help="a transfer's groups above l_c: copied from the source (the paper) or re-initialised "
                        "(Yosinski et al. 2014; trains with the target's training recipe)")
    p.add_argument("--out-dir", required=True)
    _configfiles(p)
    p.set_defaults(run=cmd_train_image)

    args = parser.parse_args(argv)
    logs.configure(args.log)
    try:
        return args.run(args)
    except (ConfigError, DataError, CheckpointError, DeviceError, GroupsError, TrainingDiverged,
            GraphCaptureFailed) as error:
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
