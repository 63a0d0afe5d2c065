# Shared helpers: configuration checks, output paths and parameter helpers.
import sys
from pathlib import Path

# The library sits beside the Snakefile. Scripts find it through the link
# scripts/gradual_transfer (Snakemake puts a script's folder on its path, in any environment).
sys.path.insert(0, workflow.basedir)

from gradual_transfer.config import (
    ConfigError,
    canonical,
    demo_datasets,
    validate_config,
)

# Data roots are checked before any job is planned, so a wrong path fails in seconds.
# `snakemake --lint` reads the rules, never the data, so it runs on a clone without data.
try:
    validate_config(config, check_data="--lint" not in sys.argv)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

OUT = config["outdir"]
DEMO_DATASETS = demo_datasets(config)


wildcard_constraints:
    dataset="|".join(["cifar10", "cifar100", "svhn", "timit", "iemocap"]),
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


def choice(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(sorted(names)) if names else "(?!)"


IMAGE = config["experiments"].get(
    "images", {"enabled": False, "tasks": [], "architectures": []}
)
IMAGE_TASKS = IMAGE["tasks"] if IMAGE["enabled"] else []
IMAGE_ARCHS = IMAGE["architectures"] if IMAGE["enabled"] else []


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


def architecture(wildcards):
    return canonical(config["architectures"][wildcards.arch])


def image_metrics():
    """metrics.json of every image model: primaries, then transfers for every ordered pair."""
    primaries = expand(
        f"{OUT}/models/{{arch}}/primary/{{task}}/fold0/metrics.json",
        arch=IMAGE_ARCHS,
        task=IMAGE_TASKS,
    )
    transfers = [
        f"{OUT}/models/{arch}/transfer/{source}-to-{target}/fold0/lc{lc}/metrics.json"
        for arch in IMAGE_ARCHS
        for source in IMAGE_TASKS
        for target in IMAGE_TASKS
        if source != target
        for lc in config["architectures"][arch]["lc"]
    ]
    return primaries + transfers


SPEECH = config["experiments"]["speech"]
SPEECH_ARCHS = SPEECH["architectures"] if SPEECH["enabled"] else []
ASR = next(t for t in SPEECH["tasks"] if task_dataset(t) == "timit")
SER = next(t for t in SPEECH["tasks"] if task_dataset(t) == "iemocap")


def speech_params(task, recipe):
    """What a speech model depends on besides its inputs: the model input window and recipe."""
    entry = config["tasks"][task]
    params = {
        "classes": entry["classes"],
        "context": config["features"]["context"],
        "recipe": entry[recipe],
    }
    if task == SER:
        params["validation_speakers"] = entry["validation_speakers"]
    return canonical(params)


def timit_inputs(wildcards=None):
    return {
        "train": f"{OUT}/features/timit/train.arrow",
        "dev": f"{OUT}/features/timit/dev.arrow",
        "test": f"{OUT}/features/timit/test.arrow",
        "stats": f"{OUT}/features/timit/stats/train.json",
    }


def iemocap_inputs(wildcards):
    return {
        "features": f"{OUT}/features/iemocap/all.arrow",
        "stats": f"{OUT}/features/iemocap/stats/fold{wildcards.fold}.json",
    }


def speech_metrics():
    """Score files of every speech model: SER-target metrics, ASR-target decodes."""
    if not SPEECH_ARCHS:
        return []
    models = f"{OUT}/models/{{arch}}"
    ser_folds = config["tasks"][SER]["folds"]
    files = expand(
        f"{models}/primary/{ASR}/fold0/decode/metrics.json", arch=SPEECH_ARCHS
    )
    files += expand(
        f"{models}/primary/{SER}/fold{{fold}}/metrics.json",
        arch=SPEECH_ARCHS,
        fold=ser_folds,
    )
    for arch in SPEECH_ARCHS:
        lcs = config["architectures"][arch]["lc"]
        files += expand(
            f"{OUT}/models/{arch}/transfer/{ASR}-to-{SER}/fold{{fold}}/lc{{lc}}/metrics.json",
            fold=ser_folds,
            lc=lcs,
        )
        files += expand(
            f"{OUT}/models/{arch}/transfer/{SER}-to-{ASR}/fold{{fold}}/lc{{lc}}/decode/metrics.json",
            fold=SPEECH["ser_source_folds"],
            lc=lcs,
        )
    return files


def model_meta(model):
    """Experiment, arch, kind, source, target, fold and l_c from a model folder under models/."""
    parts = model.split("/")
    arch, kind = parts[0], parts[1]
    if kind == "primary":
        source = target = parts[2]
        fold, lc = int(parts[3][4:]), 0
    else:
        source, target = parts[2].split("-to-")
        fold, lc = int(parts[3][4:]), int(parts[4][2:])
    experiment = "speech" if target in (ASR, SER) else "images"
    return dict(
        experiment=experiment,
        arch=arch,
        kind=kind,
        source=source,
        target=target,
        fold=fold,
        lc=lc,
    )


def all_metrics():
    return image_metrics() + speech_metrics()


def lc_sets(experiment):
    """The l_c values of the experiment's architectures (only those: a figure does not depend
    on architectures it does not draw)."""
    archs = config["experiments"][experiment]["architectures"]
    return canonical({name: config["architectures"][name]["lc"] for name in archs})


def figure_title(experiment):
    title = {
        "images": "Figure 1: gradual transfer between image datasets",
        "speech": "Figure 2: gradual transfer between speech tasks",
    }[experiment]
    return title + (" (DEMO DATA)" if DEMO_DATASETS else "")


def demo_params(wildcards):
    """Exactly what a demo corpus depends on, as plain sorted builtins."""
    return canonical(config["demo"][wildcards.dataset])


def speech_task(dataset):
    """The config entry of the task that reads a speech dataset (asr: timit, ser: iemocap)."""
    experiment = config["experiments"]["speech"]
    for name in experiment["tasks"]:
        if config["tasks"][name]["dataset"] == dataset:
            return config["tasks"][name]
    raise WorkflowError(f"experiments.speech.tasks has no task reading {dataset}")


def extraction_params():
    """Feature settings that change the extracted features. The context window is a model
    input setting, so changing it reruns training, not extraction."""
    return canonical({k: v for k, v in config["features"].items() if k != "context"})


def timit_alignment(wildcards):
    task = speech_task("timit")
    return [task["alignment"]] if task["frame_targets"] == "alignment" else []


def ser_fold_speakers(fold):
    """Training speakers of an IEMOCAP fold (1-based), from the fold layout in the library."""
    from gradual_transfer.data.iemocap import folds

    return folds(speech_task("iemocap")["validation_speakers"])[int(fold)]["train"]


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
    if IMAGE_TASKS:
        targets.append(f"{OUT}/figures/figure1_images.png")
    if SPEECH_ARCHS:
        targets.append(f"{OUT}/figures/figure2_speech.png")
    if IMAGE_TASKS or SPEECH_ARCHS:
        targets.append(f"{OUT}/tables/results.parquet")
    return targets
