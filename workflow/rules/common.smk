# Shared helpers: configuration checks, the grid of training jobs, output paths and params.
import functools
import re
import sys
from pathlib import Path

# The library sits beside the Snakefile. Scripts find it through the link
# scripts/gradual_transfer (Snakemake puts a script's folder on its path, in any environment).
sys.path.insert(0, workflow.basedir)

from gradual_transfer.config import (
    BASE_CONFIG,
    ConfigError,
    demo_datasets,
    load_config,
    merge,
    validate_config,
)
from gradual_transfer.claims import claims_warnings
from gradual_transfer.params import canonical
from gradual_transfer.data.kinds import (
    dataset_classes,
    dataset_task as first_task_reading,
)
from gradual_transfer.data.layouts import content_fingerprint, corpus_files
from gradual_transfer.data.timit import alignment_files
from gradual_transfer.grid import (
    SPEECH_EXPERIMENT,
    aligner_jobs,
    image_experiments,
    network,
    speech_studies,
    studies,
    realign_passes,
    sweep,
    training_jobs,
    training_params,
    transferability_settings,
)
from gradual_transfer.io import OutdirInUse, hold_outdir
from gradual_transfer.report import describe_run
from gradual_transfer.stages import STAGE_VERSIONS

# The paper's settings (config.yaml in the working directory), with what --configfile and
# --config give merged over them, as `configfile:` would, but read by the library so that a YAML
# error names the file and the line. Data roots are checked before any job is planned, so a wrong
# path fails in seconds; `snakemake --lint` reads the rules, never the data.
try:
    config.update(merge(load_config(BASE_CONFIG), dict(config)))
    config.update(
        validate_config(config, check_data="--lint" not in sys.argv)
    )  # with the schema's defaults
except ConfigError as error:
    raise WorkflowError(str(error)) from None

OUT = config["outdir"]
DEMO_DATASETS = demo_datasets(config)

# What the design cannot conclude is said before a job runs (a warning: the run may be a first
# look); `check-config` says what every experiment can claim.
if workflow.is_main_process:
    for sentence in claims_warnings(config):
        print(f"Warning: {sentence}", file=sys.stderr)


# A run (not a dry run) takes the output folder: a second working directory whose config names
# the same outdir is refused instead of running the same jobs over this one's files.
onstart:
    try:
        hold_outdir(OUT, f"the Snakemake run in {Path.cwd()}")
    except OutdirInUse as error:
        raise WorkflowError(str(error)) from None


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    split="train|dev|test",
    fold=r"\d+",


def dataset_root(dataset):
    """Where a dataset is read from: the generated demo corpus, or the configured root."""
    if dataset in DEMO_DATASETS:
        return f"{OUT}/corpora/{dataset}"
    return config["datasets"][dataset]["root"]


def dataset_input(dataset):
    """The data root as a job input (none when torchvision downloads it into the root)."""
    if config["datasets"][dataset].get("download") and dataset not in DEMO_DATASETS:
        return []
    return dataset_root(dataset)


def corpus_content(dataset, split=None):
    """The names, sizes and times of the corpus files a job reads, as a param: replacing,
    adding or removing one re-runs exactly the jobs that read it. (A generated demo corpus is
    tracked by its rule's output; a downloaded one appears only when its job runs.)"""
    entry = config["datasets"][dataset]
    if dataset in DEMO_DATASETS or entry.get("download"):
        return "generated" if dataset in DEMO_DATASETS else "downloaded"
    root = dataset_root(dataset)
    return content_fingerprint(root, corpus_files(entry["kind"], root, split, entry))


def datasets_of_kind(*kinds):
    """A wildcard constraint for `{dataset}`: the configured datasets of these kinds."""
    names = [
        name for name, entry in config["datasets"].items() if entry["kind"] in kinds
    ]
    return "|".join(map(re.escape, names)) if names else "(?!)"


def task_dataset(task):
    return config["tasks"][task]["dataset"]


def image_data(task):
    """Prepared splits and statistics of an image task's dataset."""
    dataset = task_dataset(task)
    return {
        "train": f"{OUT}/data/{dataset}/train.arrow",
        "validation": f"{OUT}/data/{dataset}/validation.arrow",
        "test": f"{OUT}/data/{dataset}/test.arrow",
        "stats": f"{OUT}/data/{dataset}/stats.json",
    }


def image_preparation_params(wildcards):
    """What the prepared splits depend on (not the root, md5 check or download switch)."""
    entry = config["datasets"][wildcards.dataset]
    return canonical(
        {k: entry[k] for k in ("validation", "use_extra", "train_limit") if k in entry}
    )


def imagefolder_params(wildcards):
    """What an image folder's prepared splits depend on: its preparation keys, and the classes
    the tasks reading it expect (checked against its class folders)."""
    entry = config["datasets"][wildcards.dataset]
    return canonical(
        {
            "image_size": entry["image_size"],
            "validation": entry.get("validation"),  # None: the folder's val/
            "bad_images": entry["bad_images"],
            "classes": dataset_classes(config, wildcards.dataset),
        }
    )


# --- training jobs ---------------------------------------------------------------------------
# Every training job of the grid, by its folder under models/ (gradual_transfer.grid). Rules
# match `{job}` against these folders only and look the job up: nothing is parsed from a path.
MODELS = f"{OUT}/models"
JOBS = {job.folder: job for job in training_jobs(config) + aligner_jobs(config)}
REALIGN_PASSES = realign_passes(config)  # 0: TIMIT's targets are the extracted ones


def jobs_of(experiments, kind=None, target_dataset=None):
    """A wildcard constraint for `{job}`: the folders of these jobs, exactly (of the experiments
    named, of one kind, "primary", "transfer" or "control", or with `kind` None all of them).
    """
    folders = [
        folder
        for folder, job in JOBS.items()
        if job.experiment in experiments
        and kind in (None, job.kind)
        and target_dataset in (None, task_dataset(job.target))
    ]
    return "|".join(map(re.escape, sorted(folders))) if folders else "(?!)"


def job_params(wildcards):
    """Exactly what the job's model depends on, with its identity and the training stage's
    version (gradual_transfer.grid.training_params)."""
    return training_params(config, JOBS[wildcards.job])


def data_files(job):
    """The prepared data of a job's target task, by role."""
    dataset = task_dataset(job.target)
    if (
        dataset == "timit"
    ):  # an aligner trains on the targets of the pass before its own
        return timit_inputs(job.aligner_pass - 1 if job.aligner_pass else None)
    if config["datasets"][dataset]["kind"] in (
        "iemocap",
        "kaldi",
    ):  # utterance classification
        return {
            "features": f"{OUT}/features/{dataset}/all.arrow",
            "stats": f"{OUT}/features/{dataset}/stats/fold{job.fold}.json",
        }
    return image_data(job.target)


def training_inputs(wildcards):
    """The target's data, and for a transfer the primary model it starts from."""
    job = JOBS[wildcards.job]
    inputs = data_files(job)
    if job.is_transfer:
        inputs["source"] = f"{MODELS}/{job.source_job.folder}/model.pt"
    return inputs


def training_outputs(posteriors=False):
    """Model and metrics; ASR-target models also write dev/test log-posteriors for decoding."""
    outputs = {
        "model": f"{MODELS}/{{job}}/model.pt",
        "metrics": f"{MODELS}/{{job}}/metrics.json",
    }
    if posteriors:
        for split in ("dev", "test"):
            outputs[f"{split}_ark"] = f"{MODELS}/{{job}}/posteriors/{split}.ark"
            outputs[f"{split}_scp"] = f"{MODELS}/{{job}}/posteriors/{split}.scp"
    return outputs


def scored_metrics(job):
    """The file holding a job's final scores: its decode for ASR targets, else its metrics."""
    decode = "decode/" if task_dataset(job.target) == "timit" else ""
    return f"{MODELS}/{job.folder}/{decode}metrics.json"


def timit_inputs(targets_pass=None):
    """TIMIT's feature files with the targets of a realignment pass (0: as extracted; None:
    the final targets, which every model trained on TIMIT uses). Realignment replaces the
    targets of train and dev; test keeps the labelled ones (decoding never reads them).
    """
    targets_pass = REALIGN_PASSES if targets_pass is None else targets_pass
    extracted = f"{OUT}/features/timit"
    aligned = f"{extracted}/realigned/pass{targets_pass}" if targets_pass else extracted
    return {
        "train": f"{aligned}/train.arrow",
        "dev": f"{aligned}/dev.arrow",
        "test": f"{extracted}/test.arrow",
        "stats": f"{extracted}/stats/train.json",
    }


def hmm_file(targets_pass=None):
    """The HMM estimated on the training targets of a pass (None: the final targets)."""
    targets_pass = REALIGN_PASSES if targets_pass is None else targets_pass
    if targets_pass:
        return f"{OUT}/features/timit/realigned/pass{targets_pass}/hmm.json"
    return f"{OUT}/features/timit/hmm.json"


def aligner_model(wildcards):
    """The model whose alignments make the targets of pass `wildcards.targets_pass`."""
    job = next(
        j for j in JOBS.values() if j.aligner_pass == int(wildcards.targets_pass)
    )
    return f"{MODELS}/{job.folder}/model.pt"


def alignment_inputs(wildcards):
    previous = int(wildcards.targets_pass) - 1
    current, labelled = timit_inputs(previous), timit_inputs(0)
    return {
        "model": aligner_model(wildcards),
        "train": current["train"],
        "dev": current["dev"],
        "labelled_train": labelled["train"],
        "labelled_dev": labelled["dev"],
        "stats": current["stats"],
        "hmm": hmm_file(previous),
    }


def realign_params():
    task = speech_task("timit")
    return canonical(
        {
            "acoustic_scale": task["realign_acoustic_scale"],
            "self_loop_scale": task["realign_self_loop_scale"],
            "transition_scale": task["realign_transition_scale"],
            "window": task["realign_window"],
            "context": config["features"]["context"],
        }
    )


def decode_settings():
    """The decoder's grids and transition weighting (tasks.<asr>.decode)."""
    return canonical(speech_task("timit")["decode"])


def all_metrics():
    """The scores of every result (aligners are a means, not a result)."""
    return [scored_metrics(job) for job in JOBS.values() if job.kind != "aligner"]


def training_metrics():
    """Every training job's own metrics.json (its training history and cost; aligners too)."""
    return [f"{MODELS}/{job.folder}/metrics.json" for job in JOBS.values()]


def asr_primary_decodes():
    """(per-speaker PER file, label) of the dev and test decodes of every ASR primary model."""
    return [
        (
            f"{MODELS}/{job.folder}/decode/{split}/per_speaker.tsv",
            {"arch": job.arch, "seed": job.seed, "split": split},
        )
        for job in JOBS.values()
        if job.kind == "primary" and task_dataset(job.target) == "timit"
        for split in ("dev", "test")
    ]


def lc_sets(experiment):
    """The l_c values of the experiment's architectures (only those: a figure does not depend
    on architectures it does not draw)."""
    archs = config["experiments"][experiment]["architectures"]
    return canonical({name: sweep(config, name) for name in archs})


def figure_title(figure):
    title = {
        "images": "Figure 1: gradual transfer between image datasets",
        "speech": "Figure 2: gradual transfer between speech tasks",
        "transferability": "Figure 3: transferability between tasks (test split)",
        "curves": "Training curves: validation score per epoch",
    }.get(figure, f"Study {figure}: gradual transfer between its tasks")
    return title + (" (DEMO DATA)" if DEMO_DATASETS else "")


def report_settings(experiments):
    """The captions' description of what the run trained (architectures, tasks, l_c, epochs,
    seeds, folds, families, controls), for the enabled experiments among ``experiments``.
    """
    ran = {job.experiment for job in JOBS.values()}
    return "\n\n".join(
        f"{name.capitalize()}: {describe_run(config, name, bool(DEMO_DATASETS))}"
        for name in experiments
        if name in ran
    )


def networks(experiments):
    """What builds each architecture drawn (its layer groups name the figures' l_c axis)."""
    return canonical(
        {
            arch: network(config["architectures"][arch])
            for name in experiments
            if name in config["experiments"]
            for arch in config["experiments"][name]["architectures"]
        }
    )


def demo_params(wildcards):
    """Exactly what a demo corpus depends on, as plain sorted builtins."""
    return canonical(config["demo"][wildcards.dataset])


def speech_task(dataset):
    """The config entry of the task that reads a speech dataset (asr: timit, ser: iemocap)."""
    experiment = config["experiments"][SPEECH_EXPERIMENT]
    for name in experiment["tasks"]:
        if config["tasks"][name]["dataset"] == dataset:
            return config["tasks"][name]
    raise WorkflowError(f"experiments.speech.tasks has no task reading {dataset}")


IMAGE_EXPERIMENTS = image_experiments(config)
SPEECH_STUDIES = speech_studies(
    config
)  # the user's own between utterance-classification tasks
# the studies of the user's own: every enabled experiment but the paper's two, one figure each
OWN_EXPERIMENTS = sorted(name for name in studies(config) if name != "images")
# every experiment in a fixed order (the paper's, then the user's by name), not the config's
EXPERIMENTS = ["images", SPEECH_EXPERIMENT] + OWN_EXPERIMENTS


def extraction_params():
    """Feature settings that change the extracted features. The context window is a model
    input setting, so changing it reruns training, not extraction."""
    return canonical({k: v for k, v in config["features"].items() if k != "context"})


def timit_alignment(wildcards=None):
    """A Kaldi alignment's files (its script file and the archives it names), checked before
    planning (gradual_transfer.config): inputs of the extraction."""
    task = speech_task("timit")
    if task["frame_targets"] != "alignment":
        return []
    return [str(path) for path in alignment_files(task["alignment"])]


def timit_content(split):
    """What a TIMIT extraction reads, as a param: the split's corpus files and the alignment's
    (names, sizes and times), so that replacing one re-extracts even when the copy keeps an
    older time (cp -p, rsync -a)."""
    content = corpus_content("timit", split)
    alignment = timit_alignment()
    if alignment:
        content += f"; alignment {content_fingerprint('.', alignment)}"
    return content


def ser_fold_speakers(fold):
    """Training speakers of an IEMOCAP fold (1-based), from the fold layout in the library."""
    from gradual_transfer.data.iemocap import folds

    return folds(speech_task("iemocap")["validation_speakers"])[int(fold)]["train"]


def kaldi_dir_params(wildcards):
    """What a Kaldi data directory's features depend on besides its files (whose content is the
    `corpus` param): where its labels are and what to do with a bad utterance. Not
    allow_commands: a directory with commands is refused without it, so it changes no result.
    """
    entry = config["datasets"][wildcards.dataset]
    return canonical({k: entry[k] for k in ("labels", "bad_utterances")})


def dataset_task(dataset):
    """The config entry of the first task reading `dataset` (kinds.dataset_task)."""
    return first_task_reading(config, dataset)


def fold_speakers(task, fold):
    """Training speakers of a fold of a task reading a Kaldi data directory: the speakers of
    its utt2spk (read when planning), less the validation speakers and the fold's test speaker.
    """
    from gradual_transfer.data import kaldi

    layout = kaldi.folds(kaldi_speakers(task["dataset"]), task["validation_speakers"])
    return layout[int(fold)]["train"]


@functools.lru_cache
def kaldi_speakers(dataset):
    """The speakers of a Kaldi data directory (its tables were checked before planning)."""
    from gradual_transfer.data import kaldi

    entry = config["datasets"][dataset]
    return kaldi.speakers(kaldi.read_data_dir(dataset_root(dataset), entry, dataset))


def speech_targets():
    if not config["experiments"].get("speech", {}).get("enabled"):
        return []
    ser_folds = speech_task("iemocap")["folds"]
    return [
        *expand(
            f"{OUT}/features/timit/{{split}}.arrow", split=["train", "dev", "test"]
        ),
        f"{OUT}/features/timit/stats/train.json",
        f"{OUT}/features/iemocap/all.arrow",
        *expand(f"{OUT}/features/iemocap/stats/fold{{fold}}.json", fold=ser_folds),
    ]


def all_targets():
    targets = [dataset_root(d) for d in DEMO_DATASETS] + speech_targets()
    experiments = {job.experiment for job in JOBS.values()}
    if "images" in experiments:
        targets.append(f"{OUT}/figures/figure1_images.png")
    if SPEECH_EXPERIMENT in experiments:
        targets.append(f"{OUT}/figures/figure2_speech.png")
    targets += [
        f"{OUT}/figures/study_{name}.png"
        for name in OWN_EXPERIMENTS
        if name in experiments
    ]
    if experiments:
        targets += [
            f"{OUT}/tables/results.parquet",
            f"{OUT}/tables/cost.tsv",
            f"{OUT}/figures/figure3_transferability.png",
            f"{OUT}/figures/training_curves.png",
        ]
    if asr_primary_decodes():
        targets.append(f"{OUT}/tables/per_speaker.tsv")
    return targets
